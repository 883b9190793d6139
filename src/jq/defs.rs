//! The jq definitions a filter can call (jaq's and etagstore's own), parsed
//! one at a time and only when the filter reaches them: lexing and parsing
//! all of them took a quarter of an `edit --jq '.n += 1'`.

use std::collections::BTreeSet;

use jaq_core::load::parse::Term;

pub type Def = jaq_core::load::parse::Def<&'static str>;

/// The definitions in loading order: a later one shadows an earlier one of
/// the same name and arity. jaq's texts are copies (its crates only hand
/// them out parsed); a unit test checks them against jaq's.
const TEXTS: [&str; 4] = [
    include_str!("vendor/jaq-core.jq"),
    include_str!("vendor/jaq-std.jq"),
    include_str!("vendor/jaq-json.jq"),
    include_str!("defs.jq"),
];

/// One top-level definition's text, found without lexing: each starts a
/// line with `def ` and runs to the next one (nested definitions are
/// indented or follow other text on their line). A unit test checks that
/// every piece parses to exactly the definition a whole parse gives.
struct Piece {
    name: &'static str,
    text: &'static str,
}

/// Where a piece is: found while compiling etagstore, so a run only
/// compares names.
#[derive(Clone, Copy)]
struct Span {
    text: usize,
    start: usize,
    name: &'static str,
}

const PIECES: usize = spans_in::<0>(None);
const SPANS: [Span; PIECES] = {
    let mut spans = [Span {
        text: 0,
        start: 0,
        name: "",
    }; PIECES];
    spans_in(Some(&mut spans));
    spans
};

/// Counts the pieces, and writes their spans if given room.
const fn spans_in<const N: usize>(mut out: Option<&mut [Span; N]>) -> usize {
    let mut count = 0;
    let mut text = 0;
    while text < TEXTS.len() {
        let bytes = TEXTS[text].as_bytes();
        let mut at = 0;
        while at + 4 <= bytes.len() {
            let line_start = at == 0 || bytes[at - 1] == b'\n';
            if line_start
                && bytes[at] == b'd'
                && bytes[at + 1] == b'e'
                && bytes[at + 2] == b'f'
                && bytes[at + 3] == b' '
            {
                let mut name_start = at + 4;
                while name_start < bytes.len() && bytes[name_start].is_ascii_whitespace() {
                    name_start += 1;
                }
                let mut name_end = name_start;
                while name_end < bytes.len() && is_name_byte(bytes[name_end]) {
                    name_end += 1;
                }
                if let Some(out) = &mut out {
                    let (_, name) = bytes.split_at(name_start);
                    let (name, _) = name.split_at(name_end - name_start);
                    let Ok(name) = std::str::from_utf8(name) else {
                        panic!("a name is ASCII")
                    };
                    out[count] = Span {
                        text,
                        start: at,
                        name,
                    };
                }
                count += 1;
            }
            at += 1;
        }
        text += 1;
    }
    count
}

fn piece(at: usize) -> Piece {
    let span = SPANS[at];
    let text = TEXTS[span.text];
    let end = match SPANS.get(at + 1) {
        Some(next) if next.text == span.text => next.start,
        _ => text.len(),
    };
    Piece {
        name: span.name,
        text: &text[span.start..end],
    }
}

/// The pieces that define `name`, by their place.
fn defining(name: &str) -> impl Iterator<Item = usize> + '_ {
    (0..PIECES).filter(move |&at| SPANS[at].name == name)
}

const fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'@'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii() && is_name_byte(c as u8)
}

fn parse(piece: &Piece) -> Def {
    let mut defs = jaq_core::load::parse(piece.text, |p| p.defs())
        .unwrap_or_else(|| panic!("the definition of {} parses", piece.name));
    assert_eq!(defs.len(), 1, "one definition in {:?}", piece.text);
    defs.pop().expect("one")
}

/// Every definition, for `builtins`.
pub fn all() -> impl Iterator<Item = Def> {
    TEXTS.into_iter().flat_map(|text| {
        jaq_core::load::parse(text, |p| p.defs())
            .expect("the definitions parse")
            .into_iter()
    })
}

/// The definitions `code` can reach: jaq compiles every definition it is
/// given, so only those whose names the filter's text mentions (any
/// identifier-like word, a superset) and those their bodies call are
/// parsed and kept, in their order (later ones still shadow).
pub fn used(code: &str) -> Vec<Def> {
    let mut wanted: BTreeSet<&str> = BTreeSet::new();
    let mut work: Vec<&str> = Vec::new();
    let mut want = |name: &str, work: &mut Vec<&'static str>| {
        if let Some(at) = defining(name).next() {
            if wanted.insert(SPANS[at].name) {
                work.push(SPANS[at].name);
            }
        }
    };
    let mut word_start = None;
    for (i, c) in code.char_indices().chain([(code.len(), ' ')]) {
        match (is_name_char(c), word_start) {
            (true, None) => word_start = Some(i),
            (false, Some(start)) => {
                want(&code[start..i], &mut work);
                word_start = None;
            }
            _ => {}
        }
    }
    let mut parsed: Vec<(usize, Def)> = Vec::new();
    let mut called = Vec::new();
    while let Some(name) = work.pop() {
        for at in defining(name) {
            let def = parse(&piece(at));
            names_in(&def.body, &mut called);
            parsed.push((at, def));
        }
        for name in called.drain(..) {
            want(name, &mut work);
        }
    }
    parsed.sort_by_key(|(at, _)| *at);
    parsed.into_iter().map(|(_, def)| def).collect()
}

/// The names a definition's body calls (and the formats its strings use).
fn names_in(term: &Term<&'static str>, out: &mut Vec<&'static str>) {
    use jaq_core::load::lex::StrPart;
    use jaq_core::load::parse::{BinaryOp, Pattern};
    use jaq_core::path::Part;
    fn pattern(p: &Pattern<&'static str>, out: &mut Vec<&'static str>) {
        match p {
            Pattern::Var(_) => {}
            Pattern::Arr(ps) => ps.iter().for_each(|p| pattern(p, out)),
            Pattern::Obj(kvs) => kvs.iter().for_each(|(k, p)| {
                names_in(k, out);
                pattern(p, out);
            }),
        }
    }
    match term {
        Term::Id | Term::Recurse | Term::Num(_) | Term::Break(_) | Term::Var(_) => {}
        Term::Str(fmt, parts) => {
            out.extend(fmt.iter().copied());
            for part in parts {
                if let StrPart::Term(t) = part {
                    names_in(t, out);
                }
            }
        }
        Term::Arr(t) => t.iter().for_each(|t| names_in(t, out)),
        Term::Obj(kvs) => kvs.iter().for_each(|(k, v)| {
            names_in(k, out);
            v.iter().for_each(|v| names_in(v, out));
        }),
        Term::Neg(t) | Term::Label(_, t) => names_in(t, out),
        Term::BinOp(l, op, r) => {
            names_in(l, out);
            names_in(r, out);
            if let BinaryOp::Pipe(Some(p)) = op {
                pattern(p, out);
            }
        }
        Term::Fold(_, xs, p, args) => {
            names_in(xs, out);
            pattern(p, out);
            args.iter().for_each(|a| names_in(a, out));
        }
        Term::TryCatch(t, catch) => {
            names_in(t, out);
            catch.iter().for_each(|c| names_in(c, out));
        }
        Term::IfThenElse(branches, otherwise) => {
            for (cond, then) in branches {
                names_in(cond, out);
                names_in(then, out);
            }
            otherwise.iter().for_each(|t| names_in(t, out));
        }
        Term::Def(defs, body) => {
            defs.iter().for_each(|d| names_in(&d.body, out));
            names_in(body, out);
        }
        Term::Call(name, args) => {
            out.push(name);
            args.iter().for_each(|a| names_in(a, out));
        }
        Term::Path(t, path) => {
            names_in(t, out);
            for (part, _) in &path.0 {
                match part {
                    Part::Index(i) => names_in(i, out),
                    Part::Range(from, upto) => {
                        from.iter().chain(upto).for_each(|t| names_in(t, out))
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces() -> impl Iterator<Item = Piece> {
        (0..PIECES).map(piece)
    }

    fn debug(defs: impl IntoIterator<Item = Def>) -> Vec<String> {
        defs.into_iter().map(|def| format!("{def:?}")).collect()
    }

    #[test]
    fn the_copies_of_jaqs_definitions_are_jaqs() {
        let ours =
            |text: &'static str| debug(jaq_core::load::parse(text, |p| p.defs()).expect("parses"));
        // After an upgrade of jaq: copy each crate's src/defs.jq again.
        let stale = |name| format!("src/jq/vendor/{name}.jq is not {name}'s src/defs.jq");
        assert_eq!(
            ours(TEXTS[0]),
            debug(jaq_core::defs()),
            "{}",
            stale("jaq-core")
        );
        assert_eq!(
            ours(TEXTS[1]),
            debug(jaq_std::defs()),
            "{}",
            stale("jaq-std")
        );
        assert_eq!(
            ours(TEXTS[2]),
            debug(jaq_json::defs()),
            "{}",
            stale("jaq-json")
        );
    }

    #[test]
    fn each_piece_is_one_top_level_definition() {
        let one_by_one: Vec<Def> = pieces().map(|piece| parse(&piece)).collect();
        for (piece, def) in pieces().zip(&one_by_one) {
            assert_eq!(piece.name, def.name, "{:?}", piece.text);
        }
        assert_eq!(
            debug(one_by_one),
            debug(all()),
            "a top-level `def` starts a line; a nested one does not"
        );
    }

    #[test]
    fn only_the_definitions_a_filter_reaches_are_parsed() {
        let total = PIECES;
        assert!(used(".n += 1").is_empty());
        assert!(used(".a.b |= . + 1 | .c = \"d\"").is_empty());
        let names: Vec<_> = used("del(.a) | @csv").into_iter().map(|d| d.name).collect();
        for name in ["del", "delpaths", "_delpath", "@csv", "join", "unique"] {
            assert!(names.contains(&name), "{name}: {names:?}");
        }
        assert!(names.len() < total / 4, "{} of {total}", names.len());
        // Each name's definitions in loading order, whatever order they are reached in.
        let all = debug(all());
        let used = debug(used("del(.a) | @csv"));
        let mut at = all.iter();
        assert!(used.iter().all(|def| at.any(|d| d == def)), "{used:?}");
    }
}
