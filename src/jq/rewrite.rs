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

/// The filter with its assignments (and the binary operators and strings
/// whose outputs jaq would give in another order) rewritten, or `None` if
/// it has none (or does not parse: jaq then reports the error on the text
/// as written).
pub fn assignments(code: &str) -> Option<String> {
    let term = jaq_core::load::parse(code, |p| p.term())?;
    let defs = has_def(&term);
    if !needs_rewrite(&term, defs) {
        return None;
    }
    let mut out = String::with_capacity(code.len() * 2);
    DEFS.with(|d| d.set(defs));
    print(&term, &mut out);
    Some(out)
}

fn has_def(t: &Term<&str>) -> bool {
    matches!(t, Term::Def(..)) || children(t).into_iter().any(has_def)
}

fn needs_rewrite(t: &Term<&str>, defs: bool) -> bool {
    let here = match t {
        Term::BinOp(
            _,
            BinaryOp::Assign | BinaryOp::Update | BinaryOp::UpdateMath(_) | BinaryOp::UpdateAlt,
            _,
        ) => true,
        Term::BinOp(l, BinaryOp::Math(_) | BinaryOp::Cmp(_), r) => multi(l, defs) && multi(r, defs),
        Term::Str(_, parts) => multi_parts(parts, defs) > 1,
        _ => false,
    };
    here || children(t).into_iter().any(|c| needs_rewrite(c, defs))
}

fn multi_parts(parts: &[StrPart<&str, Term<&str>>], defs: bool) -> usize {
    parts
        .iter()
        .filter(|p| matches!(p, StrPart::Term(t) if multi(t, defs)))
        .count()
}

/// Builtins that give at most one output when their arguments do.
const SINGLE: &[&str] = &[
    "length",
    "utf8bytelength",
    "not",
    "keys",
    "keys_unsorted",
    "values",
    "type",
    "tostring",
    "tonumber",
    "tojson",
    "fromjson",
    "ascii_downcase",
    "ascii_upcase",
    "floor",
    "ceil",
    "round",
    "sqrt",
    "fabs",
    "abs",
    "add",
    "any",
    "all",
    "min",
    "max",
    "sort",
    "sort_by",
    "unique",
    "unique_by",
    "group_by",
    "min_by",
    "max_by",
    "reverse",
    "to_entries",
    "from_entries",
    "with_entries",
    "map",
    "map_values",
    "select",
    "empty",
    "error",
    "has",
    "contains",
    "inside",
    "startswith",
    "endswith",
    "ltrimstr",
    "rtrimstr",
    "trim",
    "ltrim",
    "rtrim",
    "join",
    "split",
    "test",
    "explode",
    "implode",
    "now",
    "todate",
    "fromdate",
    "true",
    "false",
    "null",
    "first",
    "last",
    "getpath",
    "setpath",
    "delpaths",
    "del",
    "to_number",
    "ascii",
    "env",
    "builtins",
    "input_filename",
    "isvalid",
    "flatten",
    "indices",
    "index",
    "rindex",
];

/// Whether `t` may give more than one output (`false` only when it surely
/// gives at most one); `defs`: the filter defines functions, which may
/// shadow the builtins above.
fn multi(t: &Term<&str>, defs: bool) -> bool {
    let m = |t| multi(t, defs);
    match t {
        Term::Id | Term::Num(_) | Term::Var(_) | Term::Break(_) | Term::Arr(_) => false,
        Term::Recurse | Term::Fold(..) | Term::Def(..) => true,
        Term::Str(_, parts) => multi_parts(parts, defs) > 0,
        Term::Obj(kvs) => kvs.iter().any(|(k, v)| m(k) || v.as_ref().is_some_and(m)),
        Term::Neg(t) | Term::Label(_, t) => m(t),
        Term::BinOp(_, BinaryOp::Comma, _) => true,
        Term::BinOp(l, _, r) => m(l) || m(r),
        Term::TryCatch(t, c) => m(t) || c.as_deref().is_some_and(m),
        Term::IfThenElse(branches, otherwise) => {
            branches.iter().any(|(c, t)| m(c) || m(t)) || otherwise.as_deref().is_some_and(m)
        }
        Term::Call(name, args) => {
            let single = !defs && (name.starts_with('@') || SINGLE.contains(name));
            !single || args.iter().any(m)
        }
        Term::Path(t, path) => {
            m(t) || path.0.iter().any(|(part, _)| match part {
                Part::Index(i) => m(i),
                Part::Range(None, None) => true,
                Part::Range(from, upto) => from.iter().chain(upto).any(m),
            })
        }
    }
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

std::thread_local! {
    /// Whether the filter being printed defines functions (see `multi`).
    static DEFS: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
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
        Term::Str(fmt, parts) if multi_parts(parts, DEFS.with(|d| d.get())) > 1 => {
            // jq's order: the last interpolation varies slowest
            let defs = DEFS.with(|d| d.get());
            out.push('(');
            let mut bound = Vec::new();
            for (i, part) in parts.iter().enumerate().rev() {
                if let StrPart::Term(t) = part {
                    if multi(t, defs) {
                        print(t, out);
                        out.push_str(&format!(" as $__etagstore_s{i} | "));
                        bound.push(i);
                    }
                }
            }
            let mut rest = String::new();
            if let Some(fmt) = fmt {
                rest.push_str(fmt);
                rest.push(' ');
            }
            rest.push('"');
            for (i, part) in parts.iter().enumerate() {
                match part {
                    StrPart::Term(_) if bound.contains(&i) => {
                        rest.push_str(&format!("\\($__etagstore_s{i})"))
                    }
                    part => string_part(part, &mut rest),
                }
            }
            rest.push('"');
            out.push_str(&rest);
            out.push(')');
        }
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
        string_part(part, out);
    }
    out.push('"');
}

fn string_part(part: &StrPart<&str, Term<&str>>, out: &mut String) {
    {
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
        BinaryOp::Update => {
            out.push_str("_modify_native(");
            print(l, out);
            out.push_str("; ");
            print(r, out);
            out.push(')');
        }
        BinaryOp::Assign => {
            // jq: `r as $v | _modify(l; $v)`, every path set to one value
            print(r, out);
            out.push_str(&format!(" as {VALUE} | _modify_native("));
            print(l, out);
            out.push_str(&format!("; {VALUE})"));
        }
        BinaryOp::UpdateMath(_) | BinaryOp::UpdateAlt => {
            // jq: `r as $x | l |= . op $x`
            let op = match op {
                BinaryOp::UpdateMath(m) => math(m),
                _ => "//",
            };
            print(r, out);
            out.push_str(&format!(" as {VALUE} | _modify_native("));
            print(l, out);
            out.push_str(&format!("; . {op} {VALUE})"));
        }
        BinaryOp::Math(_) | BinaryOp::Cmp(_)
            if multi(l, DEFS.with(|d| d.get())) && multi(r, DEFS.with(|d| d.get())) =>
        {
            // jq's order: for each output of r, each output of l
            let op = match op {
                BinaryOp::Math(m) => m.as_str(),
                BinaryOp::Cmp(c) => c.as_str(),
                _ => unreachable!("matched above"),
            };
            print(r, out);
            out.push_str(" as $__etagstore_rhs | ");
            print(l, out);
            out.push_str(&format!(" {op} $__etagstore_rhs"));
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

/// jq syntax that jaq's parser lacks, rewritten in the text before jaq
/// parses it:
///
/// - `E as P1 ?// P2 | BODY` (destructuring alternatives): BODY runs with
///   P1's bindings; if binding or BODY fails, with P2's, and so on; every
///   variable of every pattern is bound, `null` where the pattern in use has
///   none; the last alternative's error is the error.
/// - `{$name: pattern}` in a pattern binds `$name` to the value too.
/// - `reduce .[] / .[] as $x (...)`: jq 1.8 takes the whole source, jaq one
///   term, so the source is put in parentheses.
pub fn syntax(code: &str) -> Option<String> {
    if !(code.contains("?//")
        || code.contains("reduce")
        || code.contains("foreach")
        || code.contains(':'))
    {
        return None;
    }
    let mut code = code.to_string();
    let mut changed = false;
    // each round rewrites one construct; a body copied into several
    // alternatives is rewritten in later rounds
    for _ in 0..1000 {
        match syntax_once(&code) {
            Some(next) => {
                code = next;
                changed = true;
            }
            None => break,
        }
    }
    changed.then_some(code)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tk {
    Word,
    Var,
    Open,
    Close,
    Other,
}

/// The tokens of `code` as (start, end, kind); strings (with their
/// interpolations) and comments are skipped as one token or none.
fn tokens(code: &str) -> Vec<(usize, usize, Tk)> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'#' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        let kind = if c == b'"' {
            i = skip_string(b, i);
            Tk::Other
        } else if c == b'$'
            || c.is_ascii_alphabetic()
            || c == b'_'
            || c == b'.'
                && b.get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_')
        {
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'_'
                    || b[i] == b':' && b.get(i + 1) == Some(&b':'))
            {
                i += if b[i] == b':' { 2 } else { 1 };
            }
            match c {
                b'$' => Tk::Var,
                b'.' => Tk::Other,
                _ => Tk::Word,
            }
        } else if matches!(c, b'(' | b'[' | b'{') {
            i += 1;
            Tk::Open
        } else if matches!(c, b')' | b']' | b'}') {
            i += 1;
            Tk::Close
        } else if code[i..].starts_with("?//") {
            i += 3;
            Tk::Other
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            Tk::Other
        } else {
            // operators: the longest of the two-character ones
            let two = code.get(i..i + 2).unwrap_or("");
            i += if [
                "|=", "//", "==", "!=", "<=", ">=", "+=", "-=", "*=", "/=", "%=", "..",
            ]
            .contains(&two)
            {
                if code[i..].starts_with("//=") {
                    3
                } else {
                    2
                }
            } else {
                code[i..].chars().next().map_or(1, char::len_utf8)
            };
            Tk::Other
        };
        out.push((start, i, kind));
    }
    out
}

/// The end of the string that starts at `i` (after its closing quote),
/// interpolations and the strings in them included.
fn skip_string(b: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < b.len() {
        match b[i] {
            b'"' => return i + 1,
            b'\\' if b.get(i + 1) == Some(&b'(') => {
                i += 2;
                let mut depth = 1;
                while i < b.len() && depth > 0 {
                    match b[i] {
                        b'"' => {
                            i = skip_string(b, i);
                            continue;
                        }
                        b'(' => depth += 1,
                        b')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
    b.len()
}

/// The end (token index) of the pattern that starts at token `at`.
fn pattern_end(toks: &[(usize, usize, Tk)], at: usize) -> Option<usize> {
    match toks.get(at)?.2 {
        Tk::Var => Some(at + 1),
        Tk::Open => {
            let mut depth = 0;
            for (i, t) in toks.iter().enumerate().skip(at) {
                match t.2 {
                    Tk::Open => depth += 1,
                    Tk::Close => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
            }
            None
        }
        _ => None,
    }
}

fn syntax_once(code: &str) -> Option<String> {
    let toks = tokens(code);
    let text = |i: usize| &code[toks[i].0..toks[i].1];
    let is = |i: usize, s: &str| toks.get(i).is_some_and(|t| &code[t.0..t.1] == s);
    for i in 0..toks.len() {
        // `reduce SRC as`: SRC in parentheses, unless it is one already
        if (is(i, "reduce") || is(i, "foreach")) && !is(i + 1, ":") {
            let mut depth = 0;
            let mut end = None;
            for (j, tok) in toks.iter().enumerate().skip(i + 1) {
                match tok.2 {
                    Tk::Open => depth += 1,
                    Tk::Close if depth == 0 => break,
                    Tk::Close => depth -= 1,
                    _ if depth == 0 && text(j) == "as" => {
                        end = Some(j);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(end) = end else { continue };
            let wrapped = end == i + 2
                || toks[i + 1].2 == Tk::Open
                    && text(i + 1) == "("
                    && pattern_end(&toks, i + 1) == Some(end);
            if end > i + 1 && !wrapped {
                let (from, to) = (toks[i + 1].0, toks[end - 1].1);
                return Some(format!(
                    "{}({}){}",
                    &code[..from],
                    &code[from..to],
                    &code[to..]
                ));
            }
        }
        if !is(i, "as") {
            continue;
        }
        // the patterns after `as`
        let mut patterns = Vec::new();
        let mut at = i + 1;
        while let Some(end) = pattern_end(&toks, at) {
            patterns.push((at, end));
            if is(end, "?//") {
                at = end + 1;
            } else {
                break;
            }
        }
        // `$name: pattern` in an object pattern: `$name, "name": pattern`
        for &(from, to) in &patterns {
            for j in from..to.saturating_sub(1) {
                if toks[j].2 == Tk::Var && is(j + 1, ":") && (is(j - 1, "{") || is(j - 1, ",")) {
                    let name = &text(j)[1..];
                    let (a, b) = (toks[j].0, toks[j + 1].1);
                    return Some(format!("{}${name}, \"{name}\":{}", &code[..a], &code[b..]));
                }
            }
        }
        if patterns.len() < 2 {
            continue;
        }
        let last = patterns.last().expect("two or more").1;
        if !is(last, "|") {
            continue;
        }
        // the body: to the end of the enclosing group
        // (brackets, `if ... end` and `def ...;` inside the body nest)
        let mut open: Vec<&str> = Vec::new();
        let mut body_end = code.len();
        for t in &toks[last + 1..] {
            let word = &code[t.0..t.1];
            let inside = !open.is_empty();
            match (t.2, word) {
                (Tk::Open, _) => open.push("("),
                (Tk::Close, _) if inside => drop(open.pop()),
                (Tk::Word, "if") => open.push("if"),
                (Tk::Word, "end") if open.last() == Some(&"if") => drop(open.pop()),
                (Tk::Word, "def") => open.push("def"),
                (_, ";") if open.last() == Some(&"def") => drop(open.pop()),
                (Tk::Close, _) => {
                    body_end = t.0;
                    break;
                }
                (_, ";" | "then" | "elif" | "else" | "end") if !inside => {
                    body_end = t.0;
                    break;
                }
                _ => {}
            }
        }
        let body = &code[toks[last].1..body_end];
        let mut vars: Vec<&str> = Vec::new();
        for &(from, to) in &patterns {
            let mut parens = 0;
            for tok in &toks[from..to] {
                match &code[tok.0..tok.1] {
                    "(" => parens += 1,
                    ")" => parens -= 1,
                    v if tok.2 == Tk::Var && parens == 0 && !vars.contains(&v) => vars.push(v),
                    _ => {}
                }
            }
        }
        let nulls: String = vars.iter().map(|v| format!("null as {v} | ")).collect();
        let mut alternatives = String::new();
        for (n, &(from, to)) in patterns.iter().enumerate() {
            let pattern = &code[toks[from].0..toks[to - 1].1];
            let alt = format!("($__etagstore_dot | {nulls}$__etagstore_alt as {pattern} | {body})");
            if n + 1 < patterns.len() {
                alternatives.push_str(&format!("try {alt} catch "));
            } else {
                alternatives.push_str(&alt);
            }
        }
        return Some(format!(
            "{}as $__etagstore_alt | . as $__etagstore_dot | ({alternatives}){}",
            &code[..toks[i].0],
            &code[body_end..]
        ));
    }
    None
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
            syntax(". as [$a] ?// $a | $a").unwrap(),
            ". as $__etagstore_alt | . as $__etagstore_dot | (try ($__etagstore_dot | null as $a | \
             $__etagstore_alt as [$a] |  $a) catch ($__etagstore_dot | null as $a | \
             $__etagstore_alt as $a |  $a))"
        );
        assert_eq!(
            syntax("reduce .[] / .[] as $x (0; . + $x)").unwrap(),
            "reduce (.[] / .[]) as $x (0; . + $x)"
        );
        assert_eq!(
            syntax(". as {$b: [$c]} | $c").unwrap(),
            ". as {$b, \"b\": [$c]} | $c"
        );
        assert_eq!(
            syntax("{a: 1} | reduce .[] as $x (0; .)").unwrap(),
            "{a: 1} | reduce (.[]) as $x (0; .)"
        );
        assert_eq!(syntax("{a: 1} | .as"), None);
        assert_eq!(
            assignments(".a[0] += 1").unwrap(),
            "(1 as $__etagstore_update | _modify_native(.[\"a\"][0]; . + $__etagstore_update))"
        );
    }
}
