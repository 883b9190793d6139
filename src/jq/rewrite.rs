//! Rewrites a filter's source so that jaq runs it with jq's meaning.
//!
//! jaq runs `=`, `|=`, `+=`, ... natively, one path step at a time, which
//! differs from jq 1.8 in two places: `|= empty` on several paths deletes
//! each at once (`.[1,2] |= empty` then deletes the element that was at 3),
//! and an update through `first`, `limit`, `label` or `try` is an error.
//! jq 1.8 defines them by paths (`_modify`, `_assign` in its builtin.jq), so
//! the filter is parsed, each assignment is replaced by a call of the same
//! definitions (src/jq/defs.jq, `_modify_native` in src/jq/funs.rs), and
//! the term is printed back, every compound part in parentheses.

use jaq_core::load::lex::StrPart;
use jaq_core::load::parse::{BinaryOp, Def, Pattern, Term};
use jaq_core::path::{Opt, Part};

/// The filter with its assignments rewritten, or `None` if it has none
/// (or does not parse: jaq then reports the error on the text as written).
pub fn assignments(code: &str) -> Option<String> {
    if !code.contains('=') {
        return None;
    }
    let term = jaq_core::load::parse(code, |p| p.term())?;
    if !has_assignment(&term) {
        return None;
    }
    let mut out = String::with_capacity(code.len() * 2);
    print(&term, &mut out);
    Some(out)
}

fn has_assignment(t: &Term<&str>) -> bool {
    let assigns = matches!(
        t,
        Term::BinOp(
            _,
            BinaryOp::Assign | BinaryOp::Update | BinaryOp::UpdateMath(_) | BinaryOp::UpdateAlt,
            _,
        )
    );
    assigns || children(t).into_iter().any(has_assignment)
}

/// The terms directly in `t` (and in its patterns' keys).
fn children<'a, 's>(t: &'a Term<&'s str>) -> Vec<&'a Term<&'s str>> {
    fn pattern_keys<'a, 's>(p: &'a Pattern<&'s str>, out: &mut Vec<&'a Term<&'s str>>) {
        match p {
            Pattern::Var(_) => {}
            Pattern::Arr(ps) => ps.iter().for_each(|p| pattern_keys(p, out)),
            Pattern::Obj(kvs) => kvs.iter().for_each(|(k, p)| {
                out.push(k);
                pattern_keys(p, out);
            }),
        }
    }
    let mut out = Vec::new();
    match t {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Break(_) | Term::Var(_) => {}
        Term::Str(_, parts) => out.extend(parts.iter().filter_map(|p| match p {
            StrPart::Term(t) => Some(t),
            _ => None,
        })),
        Term::Arr(t) => out.extend(t.as_deref()),
        Term::Obj(kvs) => kvs.iter().for_each(|(k, v)| {
            out.push(k);
            out.extend(v);
        }),
        Term::Neg(t) | Term::Label(_, t) => out.push(t),
        Term::BinOp(l, op, r) => {
            out.extend([&**l, &**r]);
            if let BinaryOp::Pipe(Some(p)) = op {
                pattern_keys(p, &mut out);
            }
        }
        Term::Fold(_, xs, p, args) => {
            out.push(xs);
            out.extend(args);
            pattern_keys(p, &mut out);
        }
        Term::TryCatch(t, c) => {
            out.push(t);
            out.extend(c.as_deref());
        }
        Term::IfThenElse(branches, otherwise) => {
            branches.iter().for_each(|(c, t)| out.extend([c, t]));
            out.extend(otherwise.as_deref());
        }
        Term::Def(defs, body) => {
            out.extend(defs.iter().map(|d| &d.body));
            out.push(body);
        }
        Term::Call(_, args) => out.extend(args),
        Term::Path(t, path) => {
            out.push(t);
            for (part, _) in &path.0 {
                match part {
                    Part::Index(i) => out.push(i),
                    Part::Range(from, upto) => out.extend(from.iter().chain(upto)),
                }
            }
        }
    }
    out
}

/// The variable an arithmetic update binds its right side to.
const VALUE: &str = "$__etagstore_update";

/// Prints `t` as jq source that jaq parses back to the same term, except
/// for assignments, which become calls of `_modify` and `_assign`. What is
/// printed is always an atom (a compound term is in parentheses).
fn print(t: &Term<&str>, out: &mut String) {
    match t {
        Term::Id => out.push('.'),
        Term::Recurse => out.push_str(".."),
        Term::Num(n) => out.push_str(n),
        Term::Str(fmt, parts) => {
            if let Some(fmt) = fmt {
                out.push('(');
                out.push_str(fmt);
                out.push(' ');
            }
            string(parts, out);
            if fmt.is_some() {
                out.push(')');
            }
        }
        Term::Arr(None) => out.push_str("[]"),
        Term::Arr(Some(t)) => {
            out.push('[');
            print(t, out);
            out.push(']');
        }
        Term::Obj(kvs) => {
            out.push('{');
            for (i, (k, v)) in kvs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match (k, v) {
                    (Term::Var(x), None) => out.push_str(x),
                    (Term::Str(None, parts), _) => string(parts, out),
                    (Term::Str(Some(fmt), parts), _) => {
                        out.push_str(fmt);
                        out.push(' ');
                        string(parts, out);
                    }
                    (k, _) => {
                        out.push('(');
                        print(k, out);
                        out.push(')');
                    }
                }
                if let Some(v) = v {
                    out.push_str(": ");
                    print(v, out);
                }
            }
            out.push('}');
        }
        Term::Neg(t) => {
            out.push_str("(-");
            print(t, out);
            out.push(')');
        }
        Term::BinOp(l, op, r) => binop(l, op, r, out),
        Term::Label(x, t) => {
            out.push_str("(label ");
            out.push_str(x);
            out.push_str(" | ");
            print(t, out);
            out.push(')');
        }
        Term::Break(x) => {
            out.push_str("(break ");
            out.push_str(x);
            out.push(')');
        }
        Term::Fold(name, xs, p, args) => {
            out.push('(');
            out.push_str(name);
            out.push(' ');
            print(xs, out);
            out.push_str(" as ");
            pattern(p, out);
            call_args(args, out);
            out.push(')');
        }
        Term::TryCatch(t, c) => {
            out.push_str("(try ");
            print(t, out);
            if let Some(c) = c {
                out.push_str(" catch ");
                print(c, out);
            }
            out.push(')');
        }
        Term::IfThenElse(branches, otherwise) => {
            for (i, (cond, then)) in branches.iter().enumerate() {
                out.push_str(if i == 0 { "(if " } else { " elif " });
                print(cond, out);
                out.push_str(" then ");
                print(then, out);
            }
            if let Some(otherwise) = otherwise {
                out.push_str(" else ");
                print(otherwise, out);
            }
            out.push_str(" end)");
        }
        Term::Def(defs, body) => {
            out.push('(');
            for def in defs {
                definition(def, out);
            }
            print(body, out);
            out.push(')');
        }
        Term::Call(name, args) => {
            out.push_str(name);
            call_args(args, out);
        }
        Term::Var(x) => out.push_str(x),
        Term::Path(t, path) => {
            if matches!(**t, Term::Id) {
                out.push('.');
            } else {
                print(t, out);
            }
            for (part, opt) in &path.0 {
                out.push('[');
                match part {
                    Part::Index(i) => print(i, out),
                    Part::Range(None, None) => {}
                    Part::Range(from, upto) => {
                        if let Some(from) = from {
                            print(from, out);
                        }
                        out.push(':');
                        if let Some(upto) = upto {
                            print(upto, out);
                        }
                    }
                }
                out.push(']');
                if let Opt::Optional = opt {
                    out.push('?');
                }
            }
        }
    }
}

fn definition(def: &Def<&str>, out: &mut String) {
    out.push_str("def ");
    out.push_str(def.name);
    if !def.args.is_empty() {
        out.push('(');
        out.push_str(&def.args.join("; "));
        out.push(')');
    }
    out.push_str(": ");
    print(&def.body, out);
    out.push_str("; ");
}

fn call_args(args: &[Term<&str>], out: &mut String) {
    if args.is_empty() {
        return;
    }
    out.push('(');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        print(a, out);
    }
    out.push(')');
}

fn string(parts: &[StrPart<&str, Term<&str>>], out: &mut String) {
    out.push('"');
    for part in parts {
        match part {
            StrPart::Str(s) => out.push_str(s),
            StrPart::Term(t) => {
                out.push_str("\\(");
                print(t, out);
                out.push(')');
            }
            StrPart::Char(c) => match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if (*c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", *c as u32)),
                c => out.push(*c),
            },
        }
    }
    out.push('"');
}

fn pattern(p: &Pattern<&str>, out: &mut String) {
    match p {
        Pattern::Var(x) => out.push_str(x),
        Pattern::Arr(ps) => {
            out.push('[');
            for (i, p) in ps.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                pattern(p, out);
            }
            out.push(']');
        }
        Pattern::Obj(kvs) => {
            out.push('{');
            for (i, (k, p)) in kvs.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match k {
                    Term::Str(None, parts) => string(parts, out),
                    k => {
                        out.push('(');
                        print(k, out);
                        out.push(')');
                    }
                }
                out.push_str(": ");
                pattern(p, out);
            }
            out.push('}');
        }
    }
}

fn binop(l: &Term<&str>, op: &BinaryOp<&str>, r: &Term<&str>, out: &mut String) {
    let math = |m: &jaq_core::ops::Math| m.as_str();
    out.push('(');
    match op {
        BinaryOp::Update | BinaryOp::Assign => {
            out.push_str(if let BinaryOp::Update = op {
                "_modify("
            } else {
                "_assign("
            });
            print(l, out);
            out.push_str("; ");
            print(r, out);
            out.push(')');
        }
        BinaryOp::UpdateMath(_) | BinaryOp::UpdateAlt => {
            // jq: `r as $x | l |= . op $x`
            let op = match op {
                BinaryOp::UpdateMath(m) => math(m),
                _ => "//",
            };
            print(r, out);
            out.push_str(&format!(" as {VALUE} | _modify("));
            print(l, out);
            out.push_str(&format!("; . {op} {VALUE})"));
        }
        op => {
            print(l, out);
            match op {
                BinaryOp::Pipe(None) => out.push_str(" | "),
                BinaryOp::Pipe(Some(p)) => {
                    out.push_str(" as ");
                    pattern(p, out);
                    out.push_str(" | ");
                }
                BinaryOp::Comma => out.push_str(", "),
                BinaryOp::Alt => out.push_str(" // "),
                BinaryOp::Or => out.push_str(" or "),
                BinaryOp::And => out.push_str(" and "),
                BinaryOp::Math(m) => {
                    out.push(' ');
                    out.push_str(math(m));
                    out.push(' ');
                }
                BinaryOp::Cmp(c) => {
                    out.push(' ');
                    out.push_str(c.as_str());
                    out.push(' ');
                }
                _ => unreachable!("assignments are printed above"),
            }
            print(r, out);
        }
    }
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_terms_parse_back_to_the_same_program() {
        for code in [
            r#".a.b |= . + 1 | .c = "x\(.d)\n\"" | .e += 1, .f //= [1, {a, $__loc__, "b": 2, (.k): 3}]"#,
            "def f($x; g): g + $x; reduce .[] as [$a, {b: $c}] (0; . + $a) | f(1; .) | .x[1:]? |= 1",
            r#"if . then 1 elif .a then 2 end | try error("x") catch . | label $o | .[] as $v | -$v, break $o | @base64 "a\(.)" | .[] -= 1"#,
        ] {
            let printed = assignments(code).expect("has assignments");
            assert!(
                jaq_core::load::parse(&printed, |p| p.term()).is_some(),
                "{code} printed as {printed}"
            );
        }
        assert_eq!(assignments(".a == 1"), None);
        assert_eq!(
            assignments(".a[0] += 1").unwrap(),
            "(1 as $__etagstore_update | _modify(.[\"a\"][0]; . + $__etagstore_update))"
        );
    }
}
