//! `JqVal`: jaq's JSON value with jq's path semantics. jaq deliberately
//! refuses to index or update through `null` and to grow arrays (jaq's
//! README, "Miscellaneous"); jq creates the path: `.a.b = 1` on `{}`,
//! `.[3] = 1` on `[]`. jaq-core runs every path update (`=`, `|=`, `+=`,
//! `setpath`, `del`) through the value type's `map_index`, `map_values` and
//! `map_range`, so a newtype that implements those as jq does gives jq's
//! results everywhere at once; everything else is delegated to
//! `jaq_json::Val` (the wrapper costs nothing: it holds the same value).

use core::fmt;
use jaq_core::box_iter::box_once;
use jaq_core::path::Opt;
use jaq_core::{val, Exn};
use jaq_json::{Map, Num, Rc, Val};
use jaq_std::ValT as _;

type Error = jaq_core::Error<JqVal>;
type ValR = jaq_core::ValR<JqVal>;
type ValX<'a> = jaq_core::ValX<'a, JqVal>;

/// The largest array index a path update may create: jq's limit, and a
/// bound on the memory `.[N] = 1` can take.
const MAX_INDEX: usize = 536_870_912;

#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JqVal(pub Val);

/// jaq's error on the inner value, as an error on `JqVal` (its message kept,
/// marked as jaq's).
fn err(e: jaq_core::Error<Val>) -> Error {
    Error::new(JqVal(match e.into_val() {
        Val::TStr(s) => maybe_jaq_worded(String::from_utf8_lossy(&s).into_owned()),
        v => v,
    }))
}

/// jq's name for a value's type.
pub fn type_name(v: &Val) -> &'static str {
    match v {
        Val::Null => "null",
        Val::Bool(_) => "boolean",
        Val::Num(_) => "number",
        Val::TStr(_) | Val::BStr(_) => "string",
        Val::Arr(_) => "array",
        Val::Obj(_) => "object",
    }
}

fn msg(text: String) -> Error {
    Error::new(JqVal(Val::from(text)))
}

/// The starts of the messages jaq words unlike jq. Such a message is kept
/// as a byte string: `try ... catch .` can still pass it on, but a result
/// that holds one is refused (`Filter::apply`) instead of being written
/// with a text jq would never give.
const JAQ_WORDED: &[&str] = &[
    "cannot use ",
    "cannot calculate ",
    "cannot index ",
    "cannot iterate",
    "invalid path expression",
    "cannot convert ",
    "cannot parse ",
    "invalid regex",
    "index ",
    "byte offset ",
];

/// A string value, marked (as a byte string) when it is one of jaq's messages.
pub fn maybe_jaq_worded(text: String) -> Val {
    if JAQ_WORDED.iter().any(|start| text.starts_with(start)) {
        Val::byte_str(text.into_bytes())
    } else {
        Val::from(text)
    }
}

/// jq's dump of a value in an error message: compact, and cut to 29 bytes
/// with `...` (keeping a closing quote or bracket) when longer.
pub fn dump(v: &Val) -> String {
    const MAX: usize = 29;
    let text = super::funs::to_json(v);
    if text.len() <= MAX {
        return text;
    }
    let close = text.chars().last().filter(|c| matches!(c, '"' | ']' | '}'));
    let mut keep = if close.is_some() { MAX - 4 } else { MAX - 3 };
    while !text.is_char_boundary(keep) {
        keep -= 1;
    }
    let mut out = format!("{}...", &text[..keep]);
    out.extend(close);
    out
}

/// jq 1.8's "Cannot index T with K (KEY)".
fn cannot_index(v: &Val, index: &Val) -> Error {
    msg(format!(
        "Cannot index {} with {} ({})",
        type_name(v),
        type_name(index),
        dump(index)
    ))
}

fn cannot_iterate(v: &Val) -> Error {
    match v {
        Val::Null => msg("Cannot iterate over null".into()),
        _ => msg(format!(
            "Cannot iterate over {} ({})",
            type_name(v),
            dump(v)
        )),
    }
}

/// An array index as jq takes it: numbers are floored.
fn int_index(index: &Val) -> Option<isize> {
    match index {
        Val::Num(Num::Float(f)) if f.is_finite() => Some(f.floor() as isize),
        Val::Num(_) => index.as_isize().or_else(|| {
            let f = index.as_f64()?;
            (f.is_finite()).then(|| f.floor() as isize)
        }),
        _ => None,
    }
}

fn rc_unwrap_or_clone<T: Clone>(a: Rc<T>) -> T {
    Rc::try_unwrap(a).unwrap_or_else(|a| (*a).clone())
}

/// A slice's bounds `[from:upto]` on a sequence of `len`, clipped as jq does.
fn slice_bounds(range: &val::Range<&JqVal>, len: usize) -> Result<(usize, usize), Error> {
    let bound = |b: Option<&JqVal>, default: usize, up: bool| -> Result<usize, Error> {
        let Some(JqVal(b)) = b else {
            return Ok(default);
        };
        if let Val::Null = b {
            return Ok(default);
        }
        let f = b
            .as_f64()
            .ok_or_else(|| msg("Start and end indices of an array slice must be numbers".into()))?;
        if f.is_nan() {
            return Ok(default);
        }
        let f = if up { f.ceil() } else { f.floor() };
        let i = if f < 0.0 { len as f64 + f } else { f };
        Ok(i.clamp(0.0, len as f64) as usize)
    };
    let from = bound(range.start, 0, false)?;
    let upto = bound(range.end, len, true)?;
    Ok((from, upto.max(from)))
}

impl JqVal {
    /// The object or array a path update on `null` starts from: `{}` for
    /// a key, `[]` for an index or slice.
    fn null_as(index: &Val) -> Val {
        match index {
            Val::TStr(_) | Val::BStr(_) => Val::obj(Map::default()),
            _ => Val::Arr(Rc::new(Vec::new())),
        }
    }
}

impl fmt::Display for JqVal {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<bool> for JqVal {
    fn from(b: bool) -> Self {
        JqVal(Val::from(b))
    }
}
impl From<isize> for JqVal {
    fn from(i: isize) -> Self {
        JqVal(Val::from(i))
    }
}
impl From<usize> for JqVal {
    fn from(i: usize) -> Self {
        JqVal(Val::from(i))
    }
}
impl From<f64> for JqVal {
    fn from(f: f64) -> Self {
        JqVal(Val::from(f))
    }
}
impl From<String> for JqVal {
    fn from(s: String) -> Self {
        // jaq turns its own errors into values through here
        JqVal(maybe_jaq_worded(s))
    }
}
impl From<val::Range<JqVal>> for JqVal {
    fn from(r: val::Range<JqVal>) -> Self {
        JqVal(Val::from(r.start.map(|v| v.0)..r.end.map(|v| v.0)))
    }
}
impl FromIterator<JqVal> for JqVal {
    fn from_iter<T: IntoIterator<Item = JqVal>>(iter: T) -> Self {
        JqVal(iter.into_iter().map(|v| v.0).collect())
    }
}

/// jq computes in doubles: an integer result beyond 2^53 (exact in jaq,
/// which has big integers) becomes the double jq would have.
fn as_jq_computes(v: Val) -> Val {
    const EXACT: isize = 1 << 53;
    match v {
        Val::Num(Num::Int(i)) if !(-EXACT..=EXACT).contains(&i) => Val::from(i as f64),
        Val::Num(Num::BigInt(_)) => Val::from(v.as_f64().unwrap_or(f64::NAN)),
        v => v,
    }
}

/// jq's error for an operation on values it does not combine:
/// `string ("a") and number (1) cannot be added`.
fn cannot(l: &Val, r: &Val, what: &str) -> Error {
    msg(format!(
        "{} ({}) and {} ({}) cannot be {what}",
        type_name(l),
        dump(l),
        type_name(r),
        dump(r)
    ))
}

/// Whether jaq combines the two values with the operation (`+`, `-`, `*`,
/// `/`); checked first so that the values need not be cloned for the error.
fn combines(op: char, l: &Val, r: &Val) -> bool {
    use Val::{Arr, Null, Num as N, Obj, TStr};
    match op {
        '+' => matches!(
            (l, r),
            (Null, _)
                | (_, Null)
                | (N(_), N(_))
                | (TStr(_), TStr(_))
                | (Arr(_), Arr(_))
                | (Obj(_), Obj(_))
        ),
        '-' => matches!((l, r), (N(_), N(_)) | (Arr(_), Arr(_))),
        '*' => matches!(
            (l, r),
            (N(_), N(_)) | (TStr(_), N(_)) | (N(_), TStr(_)) | (Obj(_), Obj(_))
        ),
        _ => matches!((l, r), (N(_), N(_)) | (TStr(_), TStr(_))),
    }
}

/// jq computes with doubles: an integer operand that a double cannot hold
/// exactly becomes the double first (`13911860366432393 - 10` is
/// `13911860366432382`, not the exact difference rounded).
fn as_operand(v: Val) -> Val {
    const EXACT: isize = 1 << 53;
    match v {
        Val::Num(Num::Int(i)) if !(-EXACT..=EXACT).contains(&i) => Val::from(i as f64),
        Val::Num(Num::BigInt(_)) => Val::from(v.as_f64().unwrap_or(f64::NAN)),
        v => v,
    }
}

/// jq 1.8's string repetition: `s * n` is `n` (truncated) copies, `null`
/// for a negative or NaN count, an error past 2^31 bytes.
fn repeat(s: &[u8], n: f64) -> ValR {
    if n.is_nan() || n < 0.0 {
        return Ok(JqVal(Val::Null));
    }
    let times = n.trunc();
    if times * s.len() as f64 > i32::MAX as f64 {
        return Err(msg("Repeat string result too long".into()));
    }
    Ok(JqVal(Val::from(
        String::from_utf8_lossy(&s.repeat(times as usize)).into_owned(),
    )))
}

macro_rules! op {
    ($trait:ident, $fn:ident, $op:expr, $what:expr) => {
        impl core::ops::$trait for JqVal {
            type Output = ValR;
            fn $fn(self, rhs: Self) -> ValR {
                if !combines($op, &self.0, &rhs.0) {
                    // the values as written, not as doubles
                    return Err(cannot(&self.0, &rhs.0, $what));
                }
                let (l, r) = (as_operand(self.0), as_operand(rhs.0));
                if $op == '*' {
                    match (&l, &r) {
                        (Val::TStr(s), n @ Val::Num(_)) | (n @ Val::Num(_), Val::TStr(s)) => {
                            return repeat(s, n.as_f64().unwrap_or(f64::NAN));
                        }
                        _ => {}
                    }
                }
                core::ops::$trait::$fn(l, r)
                    .map(|v| JqVal(as_jq_computes(v)))
                    .map_err(err)
            }
        }
    };
}
op!(Add, add, '+', "added");
op!(Sub, sub, '-', "subtracted");
op!(Mul, mul, '*', "multiplied");

impl core::ops::Div for JqVal {
    type Output = ValR;
    fn div(self, rhs: Self) -> ValR {
        if !combines('/', &self.0, &rhs.0) {
            return Err(cannot(&self.0, &rhs.0, "divided"));
        }
        let (l, r) = (as_operand(self.0), as_operand(rhs.0));
        if matches!(l, Val::Num(_)) && r.as_f64() == Some(0.0) {
            return Err(cannot(&l, &r, "divided because the divisor is zero"));
        }
        (l / r).map(|v| JqVal(as_jq_computes(v))).map_err(err)
    }
}

/// jq's `%` works on the operands truncated to integers.
impl core::ops::Rem for JqVal {
    type Output = ValR;
    fn rem(self, rhs: Self) -> ValR {
        let (l, r) = (self.0, rhs.0);
        let (Some(a), Some(b)) = (l.as_f64(), r.as_f64()) else {
            return Err(cannot(&l, &r, "divided"));
        };
        if a.is_nan() || b.is_nan() {
            return Ok(JqVal::from(f64::NAN));
        }
        let (a, b) = (a.trunc() as i64, b.trunc() as i64);
        if b == 0 {
            return Err(cannot(
                &l,
                &r,
                "divided (remainder) because the divisor is zero",
            ));
        }
        Ok(JqVal(as_jq_computes(Val::from(a.wrapping_rem(b) as isize))))
    }
}

impl core::ops::Neg for JqVal {
    type Output = ValR;
    fn neg(self) -> ValR {
        match self.0 {
            v @ Val::Num(_) => (-v).map(JqVal).map_err(err),
            v => Err(msg(format!(
                "{} ({}) cannot be negated",
                type_name(&v),
                dump(&v)
            ))),
        }
    }
}

impl jaq_core::ValT for JqVal {
    fn from_num(n: &str) -> ValR {
        Val::from_num(n).map(JqVal).map_err(err)
    }

    fn from_map<I: IntoIterator<Item = (Self, Self)>>(iter: I) -> ValR {
        let mut map = Map::default();
        for (k, v) in iter {
            if !matches!(k.0, Val::TStr(_)) {
                return Err(msg(format!(
                    "Object keys must be strings, not {}",
                    type_name(&k.0)
                )));
            }
            map.insert(k.0, v.0);
        }
        Ok(JqVal(Val::obj(map)))
    }

    fn key_values(self) -> Box<dyn Iterator<Item = Result<(Self, Self), Error>>> {
        match self.0 {
            v @ (Val::Arr(_) | Val::Obj(_)) => Box::new(
                v.key_values()
                    .map(|kv| kv.map(|(k, v)| (JqVal(k), JqVal(v))).map_err(err)),
            ),
            v => box_once(Err(cannot_iterate(&v))),
        }
    }

    fn values(self) -> Box<dyn Iterator<Item = ValR>> {
        match self.0 {
            v @ (Val::Arr(_) | Val::Obj(_)) => {
                Box::new(v.values().map(|v| v.map(JqVal).map_err(err)))
            }
            v => box_once(Err(cannot_iterate(&v))),
        }
    }

    fn index(self, index: &Self) -> ValR {
        let index = &index.0;
        match (self.0, index) {
            (Val::Null, Val::TStr(_) | Val::Num(_) | Val::Null | Val::Obj(_)) => {
                Ok(JqVal(Val::Null))
            }
            (v @ Val::Obj(_), Val::TStr(_)) => v.index(index).map(JqVal).map_err(err),
            (Val::Arr(a), Val::Num(_)) => {
                let i = int_index(index);
                let i = i.and_then(|i| {
                    if i < 0 {
                        i.checked_add(a.len() as isize)
                    } else {
                        Some(i)
                    }
                });
                let got = i
                    .and_then(|i| usize::try_from(i).ok())
                    .and_then(|i| a.get(i));
                Ok(JqVal(got.cloned().unwrap_or(Val::Null)))
            }
            (v @ Val::Arr(_), Val::Arr(_)) => v.index(index).map(JqVal).map_err(err),
            // a slice as a path element (`getpath([{"start": 1.5, "end": 3.5}])`)
            (v @ (Val::Arr(_) | Val::TStr(_)), Val::Obj(o)) => {
                let bound = |k: &str| o.get(&Val::from(k.to_string())).cloned().map(JqVal);
                let (start, end) = (bound("start"), bound("end"));
                JqVal(v).range(start.as_ref()..end.as_ref())
            }
            (v, _) => Err(cannot_index(&v, index)),
        }
    }

    fn range(self, range: val::Range<&Self>) -> ValR {
        match self.0 {
            Val::Null => Ok(JqVal(Val::Null)),
            v @ (Val::Arr(_) | Val::TStr(_) | Val::BStr(_)) => {
                let inner = range.start.map(|v| &v.0)..range.end.map(|v| &v.0);
                let floats = [inner.start, inner.end]
                    .into_iter()
                    .flatten()
                    .any(|b| matches!(b, Val::Num(_)) && !b.is_int());
                if floats {
                    let len = match &v {
                        Val::Arr(a) => a.len(),
                        Val::TStr(t) | Val::BStr(t) => String::from_utf8_lossy(t).chars().count(),
                        _ => return v.range(inner).map(JqVal).map_err(err),
                    };
                    let (from, upto) = slice_bounds(&range, len)?;
                    let from = JqVal::from(from);
                    let upto = JqVal::from(upto);
                    return v
                        .range(Some(&from.0)..Some(&upto.0))
                        .map(JqVal)
                        .map_err(err);
                }
                v.range(inner).map(JqVal).map_err(err)
            }
            v => Err(msg(format!("Cannot index {} with object", type_name(&v)))),
        }
    }

    fn map_values<'a, I: Iterator<Item = ValX<'a>>>(
        self,
        opt: Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a> {
        match self.0 {
            // jq keeps the first output of `f` and drops the element when
            // there is none.
            Val::Arr(a) => {
                let mut out = Vec::with_capacity(a.len());
                for x in rc_unwrap_or_clone(a) {
                    if let Some(y) = f(JqVal(x)).next() {
                        out.push(y?.0);
                    }
                }
                Ok(JqVal(Val::Arr(Rc::new(out))))
            }
            Val::Obj(o) => {
                let mut out = Map::default();
                for (k, v) in rc_unwrap_or_clone(o) {
                    if let Some(y) = f(JqVal(v)).next() {
                        out.insert(k, y?.0);
                    }
                }
                Ok(JqVal(Val::obj(out)))
            }
            v => opt.fail(JqVal(v), |v| Exn::from(cannot_iterate(&v.0))),
        }
    }

    fn map_index<'a, I: Iterator<Item = ValX<'a>>>(
        self,
        index: &Self,
        opt: Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a> {
        let idx = &index.0;
        let was_null = matches!(self.0, Val::Null);
        // jq deletes nothing below a missing value; here the update would
        // already have created the parent, so it is an error instead.
        let through_null = || {
            Exn::from(msg(format!(
                "Cannot delete below a missing value at {idx}; use del(...) instead of |= empty"
            )))
        };
        let v = match self.0 {
            Val::Null if matches!(idx, Val::TStr(_) | Val::Num(_) | Val::Obj(_)) => {
                JqVal::null_as(idx)
            }
            v => v,
        };
        match (v, idx) {
            (v @ Val::Arr(_), Val::Obj(o)) => {
                let start = o.get(&Val::from("start".to_string())).cloned().map(JqVal);
                let end = o.get(&Val::from("end".to_string())).cloned().map(JqVal);
                JqVal(v).map_range(start.as_ref()..end.as_ref(), opt, f)
            }
            (Val::Obj(mut o), Val::TStr(_)) => {
                let map = Rc::make_mut(&mut o);
                match map.get_index_of(idx) {
                    Some(pos) => {
                        let old = core::mem::take(&mut map[pos]);
                        match f(JqVal(old)).next().transpose()? {
                            Some(y) => map[pos] = y.0,
                            // jq keeps the order of the other keys
                            None => {
                                map.shift_remove_index(pos);
                            }
                        }
                    }
                    None => match f(JqVal(Val::Null)).next().transpose()? {
                        Some(y) => {
                            map.insert(idx.clone(), y.0);
                        }
                        None if was_null => return Err(through_null()),
                        None => {}
                    },
                }
                Ok(JqVal(Val::Obj(o)))
            }
            (Val::Arr(mut a), Val::Num(_)) => {
                // Deleting at a NaN or out-of-range negative index deletes
                // nothing, as in jq; setting there is an error.
                let Some(i) = int_index(idx) else {
                    return match f(JqVal(Val::Null)).next().transpose()? {
                        None => Ok(JqVal(Val::Arr(a))),
                        Some(_) => opt.fail(JqVal(Val::Arr(a)), |_| {
                            Exn::from(msg("Cannot set array element at NaN index".into()))
                        }),
                    };
                };
                let len = a.len() as isize;
                let i = if i < 0 { i + len } else { i };
                if i < 0 {
                    return match f(JqVal(Val::Null)).next().transpose()? {
                        None => Ok(JqVal(Val::Arr(a))),
                        Some(_) => opt.fail(JqVal(Val::Arr(a)), |_| {
                            Exn::from(msg("Out of bounds negative array index".into()))
                        }),
                    };
                }
                let i = i as usize;
                if i > MAX_INDEX {
                    return opt.fail(JqVal(Val::Arr(a)), |_| {
                        Exn::from(msg("Array index too large".into()))
                    });
                }
                let vec = Rc::make_mut(&mut a);
                let old = vec.get_mut(i).map(core::mem::take).unwrap_or(Val::Null);
                match f(JqVal(old)).next().transpose()? {
                    Some(y) => {
                        if i >= vec.len() {
                            vec.resize(i + 1, Val::Null);
                        }
                        vec[i] = y.0;
                    }
                    None if was_null => return Err(through_null()),
                    None => {
                        if i < vec.len() {
                            vec.remove(i);
                        }
                    }
                }
                Ok(JqVal(Val::Arr(a)))
            }
            (v @ (Val::TStr(_) | Val::BStr(_)), Val::Obj(_)) => opt.fail(JqVal(v), |_| {
                Exn::from(msg("Cannot update string slices".into()))
            }),
            (v @ Val::Arr(_), Val::Arr(_)) => opt.fail(JqVal(v), |_| {
                Exn::from(msg("Cannot update field at array index of array".into()))
            }),
            (v, _) => opt.fail(JqVal(v), |v| Exn::from(cannot_index(&v.0, idx))),
        }
    }

    fn map_range<'a, I: Iterator<Item = ValX<'a>>>(
        self,
        range: val::Range<&Self>,
        opt: Opt,
        f: impl Fn(Self) -> I,
    ) -> ValX<'a> {
        let v = match self.0 {
            Val::Null => Val::Arr(Rc::new(Vec::new())),
            v => v,
        };
        match v {
            Val::Arr(mut a) => {
                let (from, upto) = match slice_bounds(&range, a.len()) {
                    Ok(bounds) => bounds,
                    Err(e) => return opt.fail(JqVal(Val::Arr(a)), |_| Exn::from(e)),
                };
                let slice: Vec<Val> = a[from..upto].to_vec();
                let y = match f(JqVal(Val::Arr(Rc::new(slice)))).next().transpose()? {
                    Some(JqVal(Val::Arr(y))) => rc_unwrap_or_clone(y),
                    Some(_) => {
                        return Err(Exn::from(msg(
                            "A slice of an array can only be assigned another array".into(),
                        )))
                    }
                    None => Vec::new(),
                };
                Rc::make_mut(&mut a).splice(from..upto, y);
                Ok(JqVal(Val::Arr(a)))
            }
            v @ (Val::TStr(_) | Val::BStr(_)) => opt.fail(JqVal(v), |_| {
                Exn::from(msg("Cannot update string slices".into()))
            }),
            v => opt.fail(JqVal(v), |v| {
                Exn::from(msg(format!(
                    "Cannot update field at object index of {}",
                    type_name(&v.0)
                )))
            }),
        }
    }

    fn as_bool(&self) -> bool {
        self.0.as_bool()
    }

    fn into_string(self) -> Self {
        match self.0 {
            v @ Val::TStr(_) => JqVal(v.into_string()),
            // one of jaq's messages stays marked (see `maybe_jaq_worded`)
            v @ Val::BStr(_) => JqVal(v),
            v => JqVal::from(super::funs::to_json(&v)),
        }
    }
}

impl jaq_std::ValT for JqVal {
    fn into_seq<S: FromIterator<Self>>(self) -> Result<S, Self> {
        match self.0 {
            Val::Arr(a) => Ok(rc_unwrap_or_clone(a).into_iter().map(JqVal).collect()),
            v => Err(JqVal(v)),
        }
    }
    fn is_int(&self) -> bool {
        self.0.is_int()
    }
    fn as_isize(&self) -> Option<isize> {
        self.0.as_isize()
    }
    fn as_f64(&self) -> Option<f64> {
        self.0.as_f64()
    }
    fn is_utf8_str(&self) -> bool {
        self.0.is_utf8_str()
    }
    fn as_bytes(&self) -> Option<&[u8]> {
        self.0.as_bytes()
    }
    fn as_sub_str(&self, sub: &[u8]) -> Self {
        JqVal(self.0.as_sub_str(sub))
    }
    fn from_utf8_bytes(b: impl AsRef<[u8]> + Send + 'static) -> Self {
        JqVal(Val::from_utf8_bytes(b))
    }
}
