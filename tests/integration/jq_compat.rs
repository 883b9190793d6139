//! `edit --jq` against jq, one row per idiom and builtin: the document jq
//! writes, or a known difference that must be an error (never a silently
//! different document). The expected values were checked by hand and are
//! checked against a real jq (libjq 1.8.2) when `scripts/jq-oracle.sh` has
//! made .venv-jq/ (or ETAGSTORE_JQ_ORACLE names a python with `jq`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::TestStore;

/// What jq 1.8 gives: its one output (compact), or an error.
enum Jq {
    Out(&'static str),
    /// jq 1.7.1's output, for a builtin that jq 1.8 dropped (the oracle is 1.8).
    Jq17(&'static str),
    Error,
}

/// Whether etagstore matches jq on a row.
enum Ours {
    Same,
    /// A known difference and why: etagstore must fail and write nothing.
    Differs(&'static str),
}

use Jq::{Error, Jq17, Out};
use Ours::{Differs, Same};

struct Row {
    filter: &'static str,
    input: &'static str,
    jq: Jq,
    ours: Ours,
}

const fn row(filter: &'static str, input: &'static str, jq: Jq, ours: Ours) -> Row {
    Row {
        filter,
        input,
        jq,
        ours,
    }
}

#[rustfmt::skip]
const ROWS: &[Row] = &[
    // Assigning through missing paths: jq creates the path and grows arrays.
    row(".a.b.c = 1", "{}", Out(r#"{"a":{"b":{"c":1}}}"#), Same),
    row(".a[0] = 1", "{}", Out(r#"{"a":[1]}"#), Same),
    row(".[3] = 1", "[]", Out("[null,null,null,1]"), Same),
    row(".count += 1", "null", Out(r#"{"count":1}"#), Same),
    row(r#"setpath(["a","b"]; 1)"#, "null", Out(r#"{"a":{"b":1}}"#), Same),
    row("reduce .[] as $x (null; .s += $x)", "[1,2,3]", Out(r#"{"s":6}"#), Same),
    row(r#".list[.list|length] = "new""#, r#"{"list":["a"]}"#, Out(r#"{"list":["a","new"]}"#), Same),
    row(r#".list[.list|length] = "new""#, "{}", Out(r#"{"list":["new"]}"#), Same),
    row(".a += [1]", "{}", Out(r#"{"a":[1]}"#), Same),
    row(".a.b |= . + 1", "{}", Out(r#"{"a":{"b":1}}"#), Same),
    row(".a[2].b = 1", "{}", Out(r#"{"a":[null,null,{"b":1}]}"#), Same),
    row(".a.b //= 3", "{}", Out(r#"{"a":{"b":3}}"#), Same),
    row(r#".["k"] = 1"#, "null", Out(r#"{"k":1}"#), Same),
    row(".[-1] = 5", "[1,2]", Out("[1,5]"), Same),
    row(".[-3] = 5", "[1,2]", Error, Same),
    row(r#".[1:3] = ["x"]"#, "[1,2,3,4]", Out(r#"[1,"x",4]"#), Same),
    row(r#".[2:4] = ["x"]"#, "null", Out(r#"["x"]"#), Same),
    row(r#".tags += ["x"] | .tags |= unique"#, r#"{"tags":["y","x"]}"#, Out(r#"{"tags":["x","y"]}"#), Same),
    row(".n += 5", "200", Error, Same),
    row(".a.b = 1", r#"{"a":5}"#, Error, Same),
    row(".[0] = 1", "{}", Error, Same),
    row(r#".a = 1"#, "[]", Error, Same),
    row(r#"getpath(["a","b"])"#, "{}", Out("null"), Same),
    row(r#"getpath(["a","b"])"#, r#"{"a":1}"#, Error, Same),
    row(r#"{x: getpath(["a",0,"b"])}"#, "null", Out(r#"{"x":null}"#), Same),
    row(r#"[paths]"#, r#"{"a":[1]}"#, Out(r#"[["a"],["a",0]]"#), Same),
    row(r#"to_entries"#, r#"{"b":1,"a":2}"#, Out(r#"[{"key":"b","value":1},{"key":"a","value":2}]"#), Same),
    row("to_entries | sort_by(.key) | from_entries", r#"{"b":1,"a":2}"#, Out(r#"{"a":2,"b":1}"#), Same),
    row(".[0] * 1", "[1.0]", Out("1"), Same),
    row(r#"with_entries(.value += 1)"#, r#"{"b":1,"a":2}"#, Out(r#"{"b":2,"a":3}"#), Same),
    row(r#"with_entries({name: .key, value: .value})"#, r#"{"b":1}"#, Out(r#"{"b":1}"#), Same),
    row("[1, 0, nan] | map(isnormal)", "null", Out("[true,false,false]"), Same),
    row(r#"from_entries"#, r#"[{"key":"a","value":1},{"name":"b","value":2}]"#, Out(r#"{"a":1,"b":2}"#), Same),
    row(r#"from_entries"#, r#"[{"k":"a","v":1},{"key":1,"value":2}]"#, Jq17(r#"{"a":1,"1":2}"#), Same),
    // Deletion: several paths at once, key order kept.
    row("del(.[0,1])", r#"["a","b","c"]"#, Out(r#"["c"]"#), Same),
    row("delpaths([[0],[2]])", r#"["a","b","c"]"#, Out(r#"["b"]"#), Same),
    row("del(.a)", r#"{"a":1,"b":2,"c":3}"#, Out(r#"{"b":2,"c":3}"#), Same),
    row("del(.b)", r#"{"a":1,"b":2,"c":3}"#, Out(r#"{"a":1,"c":3}"#), Same),
    row(".a |= empty", r#"{"a":1,"b":2,"c":3}"#, Out(r#"{"b":2,"c":3}"#), Same),
    row("del(.[] | select(. == 2))", "[1,2,3,2]", Out("[1,3]"), Same),
    row("del(.a, .c)", r#"{"a":1,"b":2,"c":3,"d":4}"#, Out(r#"{"b":2,"d":4}"#), Same),
    row("del(..|nulls)", r#"{"a":null,"b":[null,1]}"#, Out(r#"{"b":[1]}"#), Same),
    row("map_values(empty)", r#"{"a":1,"b":2}"#, Out("{}"), Same),
    row("to_entries | map(select(.key != \"a\")) | from_entries", r#"{"a":1,"b":2,"c":3}"#, Out(r#"{"b":2,"c":3}"#), Same),
    row("del(.x)", "null", Out("null"), Same),
    row("del(.a.b)", "{}", Out("{}"), Same),
    row("del(.a[0])", r#"{"a":null}"#, Out(r#"{"a":null}"#), Same),
    row(".a.b |= empty", "{}", Out("{}"), Same),
    row(".a |= empty", "null", Out("null"), Same),
    row(".[] |= empty", "[1,2,3]", Out("[]"), Same),
    row(".[] |= (., .)", "[1,2]", Out("[1,2]"), Same),
    row("del(.[0,0])", "[1,2,3]", Out("[2,3]"), Same),
    row("del(.[1:])", "[1,2,3]", Out("[1]"), Same),
    row("delpaths([[]])", "{}", Out("null"), Same),
    row(".[1.7]", "[1,2,3]", Out("2"), Same),
    row(".[1.2:2.5]", "[0,1,2,3]", Out("[1,2]"), Same),
    row(r#"has(0)"#, r#"{"a":1}"#, Error, Same),
    row(r#"[has("a"), has(0)]"#, "null", Out("[false,false]"), Same),
    row(".[-5]", "[1]", Out("null"), Same),
    // Strings and dates.
    row(r#"join(",")"#, r#"[null,"a",1,true]"#, Out(r#"",a,1,true""#), Same),
    row(r#"join("-")"#, "[]", Out(r#""""#), Same),
    row(r#"now | todate | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")"#, "null", Out("true"), Same),
    row("todate", "1425599507", Out(r#""2015-03-05T23:51:47Z""#), Same),
    row("fromdate", r#""2015-03-05T23:51:47Z""#, Out("1425599507"), Same),
    row(r#"strftime("%Y-%m-%d")"#, "1425599507", Out(r#""2015-03-05""#), Same),
    row(r#"split(", ")"#, r#""a, b, c""#, Out(r#"["a","b","c"]"#), Same),
    row(r#"[splits(", *"; null)]"#, r#""a, b,c""#, Out(r#"["a","b","c"]"#), Same),
    row(r#"[splits("a"; "i")]"#, r#""xAyaz""#, Out(r#"["x","y","z"]"#), Same),
    row(r#"sub("(?<x>[a-z]+)"; "<\(.x)>")"#, r#""ab12""#, Out(r#""<ab>12""#), Same),
    row(r#"gsub("\\s+"; " ")"#, r#""a   b  c""#, Out(r#""a b c""#), Same),
    row(r#"test("A"; "i")"#, r#""abc""#, Out("true"), Same),
    row(r#"[match("(a)(b)?"; "g") | .captures | map(.string)]"#, r#""ab a""#, Out(r#"[["a","b"],["a",null]]"#), Same),
    row(r#"capture("(?<x>a)(?<y>z)?")"#, r#""a""#, Out(r#"{"x":"a","y":null}"#), Same),
    // Global matching steps through the string as jq (Oniguruma) does: an
    // empty match right after a match counts.
    row(r#"[match("a*"; "g") | [.offset, .length]]"#, r#""baaac""#, Out("[[0,0],[1,3],[4,0],[5,0]]"), Same),
    row(r#"gsub("a*"; "-")"#, r#""baaac""#, Out(r#""-b--c-""#), Same),
    row(r#"gsub(""; "-")"#, r#""abc""#, Out(r#""-a-b-c-""#), Same),
    row(r#"gsub("[^a-z]*(?<x>[a-z]*)"; "Z\(.x)")"#, r#""123foo456bar""#, Out(r#""ZfooZbarZ""#), Same),
    row(r#"[match("(a)?"; "g")]"#, r#""b""#, Out(r#"[{"offset":0,"length":0,"string":"","captures":[{"offset":-1,"string":null,"length":0,"name":null}]},{"offset":1,"length":0,"string":"","captures":[{"offset":-1,"string":null,"length":0,"name":null}]}]"#), Same),
    row(r#"sub("(?<x>a)?"; "[\(.x)]")"#, r#""b""#, Out(r#""[null]b""#), Same),
    row(r#"[splits(", *")]"#, r#""a, b,c""#, Out(r#"["a","b","c"]"#), Same),
    row(r#"[match("a*"; "gn") | .string]"#, r#""baaa""#, Out(r#"["aaa"]"#), Same),
    row(r#"[test("( )*"; "gn")]"#, r#""abc""#, Out("[false]"), Same),
    row(r#"gsub(""; "-")"#, r#""a\u00e9b""#, Out(r#""-a-\u00e9--b-""#), Differs("after an empty match jq's regex engine steps into a character that is not ASCII")),
    row(r#"test("a$")"#, r#""ba\n""#, Out("true"), Differs("jq's $ also matches before a final newline; jaq's regex engine's does not")),
    row(r#"[match("a*?"; "gn") | .string]"#, r#""baaa""#, Out(r#"["a","a","a"]"#), Differs("the regex engine has no find-not-empty mode for lazy repetition")),
    row(r#"test("a+?"; "l")"#, r#""aa""#, Out("true"), Differs("the regex engine has no longest-match mode")),
    row(r#"[match("(?:a)(?<n>b)[(]"; "g") | .captures[0].name]"#, r#""ab(""#, Out(r#"["n"]"#), Same),
    row(r#"capture("(?<y>[0-9]+)-(?<m>[0-9]+)")"#, r#""2024-05""#, Out(r#"{"y":"2024","m":"05"}"#), Same),
    row(r#"[scan("(a)(b)")]"#, r#""abab""#, Out(r#"[["a","b"],["a","b"]]"#), Same),
    row("significand", "0", Out("0"), Same),
    row(r#"ascii_downcase"#, r#""AbC""#, Out(r#""abc""#), Same),
    row(r#"ltrimstr("v")"#, r#""v1.2""#, Out(r#""1.2""#), Same),
    row(r#"tostring"#, r#"{"a":[1,2]}"#, Out(r#""{\"a\":[1,2]}""#), Same),
    row(r#"tojson"#, r#"[1,"a",null]"#, Out(r#""[1,\"a\",null]""#), Same),
    row(r#"fromjson"#, r#""{\"a\":1}""#, Out(r#"{"a":1}"#), Same),
    row(r#"tonumber"#, r#""42""#, Out("42"), Same),
    row("map(tonumber)", r#"["+5.43", "1e3", "-1.5", ".5", "5.", 7, "12"]"#, Out("[5.43,1000,-1.5,0.5,5,7,12]"), Same),
    row("map(try tonumber catch .)", r#"[" 1", "0x10", "", "1a", "[1]", true]"#, Out(r#"["string (\" 1\") cannot be parsed as a number","string (\"0x10\") cannot be parsed as a number","string (\"\") cannot be parsed as a number","string (\"1a\") cannot be parsed as a number","string (\"[1]\") cannot be parsed as a number","boolean (true) cannot be parsed as a number"]"#), Same),
    row(r#"@csv"#, r#"[1,"a,b","c\"d",null,true]"#, Out(r#""1,\"a,b\",\"c\"\"d\",,true""#), Same),
    row(r#"@tsv"#, r#"["a\tb",1,null,"c\\d"]"#, Out(r#""a\\tb\t1\t\tc\\\\d""#), Same),
    row(r#"@base64"#, r#""hi""#, Out(r#""aGk=""#), Same),
    row(r#"map(@base64d)"#, r#"["aGk=", "YQ", "YWI", ""]"#, Out(r#"["hi","a","ab",""]"#), Same),
    row(r#"@uri"#, r#""a b&c""#, Out(r#""a%20b%26c""#), Same),
    row(r#"@sh"#, r#"["a b","c'd"]"#, Out(r#""'a b' 'c'\\''d'""#), Same),
    row(r#"@html"#, r#""<a>&""#, Out(r#""&lt;a&gt;&amp;""#), Same),
    row(r#"@json "v=\(.)""#, r#"[1]"#, Out(r#""v=[1]""#), Same),
    row(r#""\(.a)-\(.b)""#, r#"{"a":1,"b":"x"}"#, Out(r#""1-x""#), Same),
    // Arrays and objects.
    row("map(. * 2)", "[1,2]", Out("[2,4]"), Same),
    row("2.0 * 1", "null", Out("2"), Same),
    row("sort_by(.n) | map(.n)", r#"[{"n":2},{"n":1}]"#, Out("[1,2]"), Same),
    row("group_by(.k) | map(length)", r#"[{"k":1},{"k":2},{"k":1}]"#, Out("[2,1]"), Same),
    row("unique_by(.k) | length", r#"[{"k":1},{"k":2},{"k":1}]"#, Out("2"), Same),
    row("min_by(.n)", r#"[{"n":2},{"n":1}]"#, Out(r#"{"n":1}"#), Same),
    row("add", r#"[[1],[2]]"#, Out("[1,2]"), Same),
    row("add", "[]", Out("null"), Same),
    row("any(. > 2)", "[1,3]", Out("true"), Same),
    row("all(. > 2)", "[1,3]", Out("false"), Same),
    row("flatten", "[1,[2,[3]]]", Out("[1,2,3]"), Same),
    row("flatten(1)", "[1,[2,[3]]]", Out("[1,2,[3]]"), Same),
    row("[range(0; 10; 3)]", "null", Out("[0,3,6,9]"), Same),
    row("[limit(2; .[])]", "[1,2,3]", Out("[1,2]"), Same),
    row("first(.[])", "[5,6]", Out("5"), Same),
    row("[.[] | select(type == \"number\")]", r#"[1,"a",null]"#, Out("[1]"), Same),
    row("indices(1)", "[0,1,2,1]", Out("[1,3]"), Same),
    row("index(\"b\")", r#""abcb""#, Out("1"), Same),
    row("keys", r#"{"b":1,"a":2}"#, Out(r#"["a","b"]"#), Same),
    row("keys_unsorted", r#"{"b":1,"a":2}"#, Out(r#"["b","a"]"#), Same),
    row("has(\"a\")", r#"{"a":null}"#, Out("true"), Same),
    row("contains({a: [1]})", r#"{"a":[1,2]}"#, Out("true"), Same),
    row("inside([1,2,3])", "[1]", Out("true"), Same),
    row("length", r#""héllo""#, Out("5"), Same),
    row("utf8bytelength", r#""héllo""#, Out("6"), Same),
    row("to_entries | length", r#"{"a":1}"#, Out("1"), Same),
    row(". * {a: {c: 2}}", r#"{"a":{"b":1}}"#, Out(r#"{"a":{"b":1,"c":2}}"#), Same),
    row(". + {b: 2}", r#"{"a":1,"b":1}"#, Out(r#"{"a":1,"b":2}"#), Same),
    row("walk(if type == \"number\" then . + 1 else . end)", r#"{"a":[1,{"b":2}]}"#, Out(r#"{"a":[2,{"b":3}]}"#), Same),
    row("transpose", "[[1,2],[3]]", Out("[[1,3],[2,null]]"), Same),
    row("[combinations]", "[[1,2],[3]]", Out("[[1,3],[2,3]]"), Same),
    row("pick(.a.b)", r#"{"a":{"b":1,"c":2},"d":3}"#, Out(r#"{"a":{"b":1}}"#), Same),
    row("pick(.a[1])", r#"{"a":[1,2,3]}"#, Out(r#"{"a":[null,2]}"#), Same),
    row("[infinite, -infinite, nan, 1.5 * 2, [3.0 * 1]] | map(tostring)", "null", Out(r#"["1.7976931348623157e+308","-1.7976931348623157e+308","null","3","[3]"]"#), Same),
    row(r#""\(1.5 * 2) \([nan])""#, "null", Out(r#""3 [null]""#), Same),
    row("[infinite] | tojson", "null", Out(r#""[1.7976931348623157e+308]""#), Same),
    row("5 | gamma", "null", Out("3.1780538303479458"), Same),
    row("[paths(type == \"number\")]", r#"{"a":1,"b":[2]}"#, Out(r#"[["a"],["b",0]]"#), Same),
    row("[leaf_paths]", r#"{"a":[1,{"b":2}]}"#, Jq17(r#"[["a",0],["a",1,"b"]]"#), Same),
    row("map(IN(2, 3))", "[1,2]", Out("[false,true]"), Same),
    row("IN(.[]; 2, 3)", "[1,2]", Out("true"), Same),
    row("INDEX(.id)", r#"[{"id":"a"},{"id":"b"}]"#, Out(r#"{"a":{"id":"a"},"b":{"id":"b"}}"#), Same),
    row("[JOIN({\"a\":\"x\"}; .k)]", r#"[{"k":"a"}]"#, Out(r#"[[[{"k":"a"},"x"]]]"#), Same),
    row("[tostream]", r#"{"a":[1]}"#, Out(r#"[[["a",0],1],[["a",0]],[["a"]]]"#), Same),
    row("fromstream(tostream)", r#"{"a":[1,{"b":null}],"c":"d"}"#, Out(r#"{"a":[1,{"b":null}],"c":"d"}"#), Same),
    row("[1 | truncate_stream([[0],1],[[1,0],2],[[1,0]],[[1]])]", "null", Out("[[[0],2],[[0]]]"), Same),
    row("builtins | length > 100", "null", Out("true"), Same),
    row(r#"[format("csv"), format("text")]"#, "[1,\"a\"]", Out(r#"["1,\"a\"","[1,\"a\"]"]"#), Same),
    row(r#"trimstr("a")"#, r#""aba""#, Out(r#""b""#), Same),
    row("have_literal_numbers", "null", Out("true"), Same),
    row("{x: .5}", "null", Out(r#"{"x":0.5}"#), Same),
    row("$__loc__", "null", Out(r#"{"file":"<top-level>","line":1}"#), Same),
    // Destructuring alternatives: an error in binding or body moves to the next.
    row(".[] as [$a] ?// $a | $a", "[[3]]", Out("3"), Same),
    row(r#".[] as [$a] ?// [$b] | if $a != null then error("err: \($a)") else {$a,$b} end"#, "[[3]]", Out(r#"{"a":null,"b":3}"#), Same),
    row("[.[] as {a:$a} ?// {a:$a} ?// $a | $a]", "[[3],[4],[5],6]", Out("[[3],[4],[5],6]"), Same),
    row("[.[] | . as {$a, b: [$c, {$d}]} ?// [$a, {$b}, $e] ?// $f | [$a, $b, $c, $d, $e, $f]]", r#"[{"a":1, "b":[2,{"d":3}]}, [4, {"b":5, "c":6}, 7, 8, 9], "foo"]"#, Out(r#"[[1,null,2,3,null,null],[4,5,null,null,7,null],[null,null,null,null,null,"foo"]]"#), Same),
    row("[.[] as [$a] ?// $a | if ($a | type) == \"array\" then error(\"x\") else $a end]", "[[[1]]]", Error, Same),
    row(". as {$a, $b:[$c, $d]} | [$a, $b, $c, $d]", r#"{"a":1, "b":[2,{"d":3}]}"#, Out(r#"[1,[2,{"d":3}],2,{"d":3}]"#), Same),
    row("[reduce .[] / .[] as $i (0; . + $i)]", "[1,2]", Out("[4.5]"), Same),
    // Several outputs on both sides of an operator come in jq's order.
    row("[foreach .[] / .[] as $i (0; . + $i)]", "[1,2]", Out("[1,3,3.5,4.5]"), Same),
    row("[(1,2) - (10,20)]", "null", Out("[-9,-8,-19,-18]"), Same),
    row(r#"["\(1,2)-\(3,4)"]"#, "null", Out(r#"["1-3","2-3","1-4","2-4"]"#), Same),
    row("splits(\"a\")", r#""xay""#, Error, Same),
    // Control flow, variables, errors.
    row("if .a then .b = 1 else . end", r#"{"a":true}"#, Out(r#"{"a":true,"b":1}"#), Same),
    row(".a as $x | .b = $x", r#"{"a":1}"#, Out(r#"{"a":1,"b":1}"#), Same),
    row(". as {a: $x} | $x", r#"{"a":1}"#, Out("1"), Same),
    row("try error(\"x\") catch .", "null", Out(r#""x""#), Same),
    row("try (.a + 1) catch \"bad\"", r#"{"a":"s"}"#, Out(r#""bad""#), Same),
    row("[.[] | tonumber?]", r#"["1","x"]"#, Out("[1]"), Same),
    row("label $out | foreach .[] as $x (0; . + $x; if . > 2 then ., break $out else empty end)", "[1,2,3]", Out("3"), Same),
    row("[.[] | until(. > 10; . * 2)]", "[1,3]", Out("[16,12]"), Same),
    row("def f(x): x * 2; f(.a)", r#"{"a":3}"#, Out("6"), Same),
    row("reduce .[] as [$k, $v] ({}; .[$k] = $v)", r#"[["a",1],["b",2]]"#, Out(r#"{"a":1,"b":2}"#), Same),
    row("[foreach .[] as $x (0; . + $x)]", "[1,2,3]", Out("[1,3,6]"), Same),
    row(".a // \"d\"", "{}", Out(r#""d""#), Same),
    row("error(\"stop\")", "{}", Error, Same),
    row("[5.5 % 2, -5 % 3, 5 % -3, 5 % 2.9]", "null", Out("[1,-2,2,1]"), Same),
    row("[nan | isnan, (infinite | isinfinite), (nan < 1)]", "null", Out("[true,true,true]"), Same),
    row("try (.a + 1) catch .", r#"{"a":"x"}"#, Out(r#""string (\"x\") and number (1) cannot be added""#), Same),
    row("try (. - 1) catch .", r#"{"k":[1]}"#, Out(r#""object ({\"k\":[1]}) and number (1) cannot be subtracted""#), Same),
    row("try ([] * {}) catch .", "null", Out(r#""array ([]) and object ({}) cannot be multiplied""#), Same),
    row("try (1 / 0) catch .", "null", Out(r#""number (1) and number (0) cannot be divided because the divisor is zero""#), Same),
    row("try (5 % 0.5) catch .", "null", Out(r#""number (5) and number (0.5) cannot be divided (remainder) because the divisor is zero""#), Same),
    row("try ({} / 2) catch .", "null", Out(r#""object ({}) and number (2) cannot be divided""#), Same),
    row("abs", "-5", Out("5"), Same),
    row("[9007199254740993 + 0, 1e17 + 0, 100000000000000000000 + 1, 0.1 + 0.2, 3.0 + 0]", "null", Out("[9007199254740992,100000000000000000,100000000000000000000,0.30000000000000004,3]"), Same),
    row("[.[] * 1]", "[4611686018427387904, 123456789012345678]", Out("[4611686018427387904,123456789012345680]"), Same),
    row(r#"walk(if type == "number" then . + 1 elif type == "array" then map(. * 2) else . end)"#, "[1]", Out("[4]"), Same),
    row("input_filename", "null", Out("null"), Same),
    row(r#"indices("b")"#, r#""äb""#, Out("[1]"), Same),
    row("[.[] | tostring]", "[1.0, 1.5, 100]", Out(r#"["1.0","1.5","100"]"#), Same),
    row("floor", "1.5", Out("1"), Same),
    row("sqrt", "16", Out("4"), Same),
    row("1 / 3 * 3", "null", Out("1"), Same),
    row("[.[] | round]", "[1.5,-1.5]", Out("[2,-2]"), Same),
    row("tostring", "1.5", Out(r#""1.5""#), Same),
    row("implode", "[65,66]", Out(r#""AB""#), Same),
    row("env | type", "null", Out(r#""object""#), Same),
    row("$ENV | type", "null", Out(r#""object""#), Same),
    row("[.[] | debug]", "[1]", Out("[1]"), Same),
    row("stderr", "1", Out("1"), Same),
    // Caught errors are jq 1.8's text, or the edit fails: never jaq's text written.
    row("try .a catch .", "5", Out(r#""Cannot index number with string (\"a\")""#), Same),
    row("try .[0] catch .", "{}", Out(r#""Cannot index object with number (0)""#), Same),
    row("try .[null] catch .", "{}", Out(r#""Cannot index object with null (null)""#), Same),
    row("try (.a = 1) catch .", "[]", Out(r#""Cannot index array with string (\"a\")""#), Same),
    row("try .[] catch .", r#""abc""#, Out(r#""Cannot iterate over string (\"abc\")""#), Same),
    row("try (-.) catch .", r#""foo""#, Out(r#""string (\"foo\") cannot be negated""#), Same),
    row("[range(26;30)] | map(. as $n | \"a\" * $n | try (. - 1) catch .)", "null", Out(r#"["string (\"aaaaaaaaaaaaaaaaaaaaaaaaaa\") and number (1) cannot be subtracted","string (\"aaaaaaaaaaaaaaaaaaaaaaaaaaa\") and number (1) cannot be subtracted","string (\"aaaaaaaaaaaaaaaaaaaaaaaa...\") and number (1) cannot be subtracted","string (\"aaaaaaaaaaaaaaaaaaaaaaaa...\") and number (1) cannot be subtracted"]"#), Same),
    row("try (-.) catch .", r#"{"a":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}"#, Out(r#""object ({\"a\":\"aaaaaaaaaaaaaaaaaaa...}) cannot be negated""#), Same),
    row("try (1|utf8bytelength) catch .", "null", Out(r#""number (1) only strings have UTF-8 byte length""#), Same),
    row("try delpaths(0) catch .", "{}", Out(r#""Paths must be specified as an array""#), Same),
    row("try flatten(-1) catch .", "[0,[1]]", Out(r#""flatten depth must not be negative""#), Same),
    row(r#"try join(",") catch ."#, r#"["1","2",[3,4,5]]"#, Out(r#""string (\"1,2,\") and array ([3,4,5]) cannot be added""#), Same),
    row("try skip(-1; error) catch .", "null", Out(r#""skip doesn't support negative count""#), Same),
    row("try limit(-1; error) catch .", "null", Out(r#""limit doesn't support negative count""#), Same),
    row("[nth(5,7; range(9;0;-1)), try nth(-1; range(3)) catch .]", "null", Out(r#"[4,2,"nth doesn't support negative indices"]"#), Same),
    row(r#"try (. * 1000000000) catch ."#, r#""abc""#, Out(r#""Repeat string result too long""#), Same),
    // Caught errors that etagstore cannot word as jq does: an error, nothing written.
    row("try path(.a | map(select(.b == 0))) catch .", r#"{"a":[{"b":0}]}"#, Out(r#""Invalid path expression with result [{\"b\":0}]""#), Differs("jaq words path-expression errors its own way")),
    row("try (def x: reverse; x=10) catch .", "[0,1,2]", Out(r#""Invalid path expression with result [2,1,0]""#), Differs("jaq words path-expression errors its own way")),
    row(r#"try fromjson catch ."#, r#""{'a': 123}""#, Out(r#""Invalid string literal; expected \", but got ' at line 1, column 5 (while parsing '{'a': 123}')""#), Differs("jaq's JSON parser words its errors its own way")),
    row(r#"try ("a"|test("(")) catch ."#, "null", Out(r#""Regex failure: end pattern with unmatched parenthesis""#), Differs("jaq's regex engine words its errors its own way")),
    row(r#"try (1 | ascii_downcase) catch "failed: \(.)""#, "null", Out(r#""failed: explode input must be a string""#), Differs("the message is jaq's")),
    // Deletion of several paths, negative and slice paths among them.
    row("del(.[1], .[-6], .[2], .[-3:9])", "[0,1,2,3,4,5,6,7,8,9]", Out("[0,3,5,6,9]"), Same),
    // jq 1.8 deletes all at the end ({"foo":[0,5]}); this is jq 1.7.1's one-by-one.
    // jq 1.8's `_modify`: paths from the input, deletions all at the end.
    row(".foo[1,4,2,3] |= empty", r#"{"foo":[0,1,2,3,4,5]}"#, Out(r#"{"foo":[0,5]}"#), Same),
    row(".[0,0] |= empty", "[1,2,3]", Out("[2,3]"), Same),
    row("(.a, .b) |= empty", r#"{"a":1,"b":2,"c":3}"#, Out(r#"{"c":3}"#), Same),
    row(".[] |= select(. > 1)", "[1,2,1,3]", Out("[2,3]"), Same),
    // Updates through first, limit, label and try: jq tracks their paths.
    row("first(.[]) |= 9", "[1,2]", Out("[9,2]"), Same),
    row("limit(2; .[]) |= . * 10", "[1,2,3]", Out("[10,20,3]"), Same),
    row("first(.[] | select(. > 1)) += 1", "[1,2,3]", Out("[1,3,3]"), Same),
    row("first(.a, .b) = 5", "{}", Out(r#"{"a":5}"#), Same),
    row("(label $f | .a, break $f, .b) |= 1", "{}", Out(r#"{"a":1}"#), Same),
    row("(label $f | .[] | if . > 1 then ., break $f else . end) |= 0", "[1,2,3]", Out("[0,0,3]"), Same),
    row("limit(1; .a, .b) //= 7", "{}", Out(r#"{"a":7}"#), Same),
    row("nth(1; .[]) |= 0", "[1,2,3]", Out("[1,0,3]"), Same),
    row(".a |= (.b |= empty)", r#"{"a":{"b":1,"c":2}}"#, Out(r#"{"a":{"c":2}}"#), Same),
    row(".[] += 1", "[1,2]", Out("[2,3]"), Same),
    row(".a = (1, 2)", "{}", Error, Same),
    row("delpaths([[-200]])", "[1,2,3]", Out("[1,2,3]"), Same),
    row("del(.[nan])", "[1,2,3]", Out("[1,2,3]"), Same),
    // Numbers: literals kept as decNumber keeps them, arithmetic in doubles.
    row("have_decnum", "null", Out("true"), Same),
    row(". - 10", "13911860366432393", Out("13911860366432382"), Same),
    row("[.[0] | tostring, (13911860366432393 == 13911860366432392)]", "[13911860366432393]", Out(r#"["13911860366432393",false]"#), Same),
    row("map(tojson)", "[1e2, 1.0, 100e-2, 1E+3, 0.00001, 1e-7, 1.5e300, 0.0, 12e-1, 0.000001234, 5E-10, -1.50]", Out(r#"["1E+2","1.0","1.00","1E+3","0.00001","1E-7","1.5E+300","0.0","1.2","0.000001234","5E-10","-1.50"]"#), Same),
    row("[range(3)] | [.[1:nan], .[nan:1]]", "null", Out("[[1,2],[0]]"), Same),
    row("from_entries", r#"[{"key":"a","value":1},{"Key":"b","Value":2},{"name":"c","value":3},{"Name":"d","Value":4}]"#, Out(r#"{"a":1,"b":2,"c":3,"d":4}"#), Same),
    row("[nan % 1, 1 % nan | isnan]", "null", Out("[true,true]"), Same),
    row("fromjson | isnan", r#""nan""#, Out("true"), Same),
    row("[1E+1000,-1E+1000 | length | tojson]", "null", Out(r#"["1E+1000","1E+1000"]"#), Same),
    row(r#"try (. + "x") catch ."#, "123456789012345678901234567890", Out(r#""number (12345678901234567890123456...) and string (\"x\") cannot be added""#), Same),
    row(r#"[match(["foo", "ig"]) | .offset]"#, r#""foo bar FOO""#, Out("[0,8]"), Same),
    row("try _strindices(123) catch .", r#""abc""#, Out(r#""number (123) is not a string""#), Same),
    row("try getpath([range(10001) | 0]) catch .", "null", Out(r#""Path too deep""#), Same),
    row("setpath([range(3000) | 0]; 0) | flatten", "null", Out("[0]"), Same),
    row(r#"[match(["(bar)"])]"#, r#""foo bar""#, Out(r#"[{"offset":4,"length":3,"string":"bar","captures":[{"offset":4,"length":3,"string":"bar","name":null}]}]"#), Same),
    row("try (reduce range(10001) as $_ ([]; [.]) as $x | $x | contains($x)) catch .", "null", Out(r#""Containment check too deep""#), Same),
    row(r#"[gsub("(?<a>.)"; "\(.a|ascii_upcase)", "\(.a|ascii_downcase)", "c")]"#, r#""aB""#, Out(r#"["AB","ab","cc"]"#), Same),
    row(r#"[sub("(?<x>.)"; "\(.x)!"), gsub("a";"b"), gsub("^"; "a"), gsub(""; "-"), sub("z"; "y")]"#, r#""xaa""#, Out(r#"["x!aa","xbb","axaa","-x-a-a-","xaa"]"#), Same),
    row(r#"reduce range(10001) as $_ ([];[.]) | tojson | contains("<skipped: too deep>")"#, "null", Out("true"), Differs("jq cuts what it prints at 10,000 levels; etagstore fails instead")),
];

/// `text` without the whitespace outside strings: jq's layout, compared.
fn compact(text: &str) -> String {
    let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !c.is_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

#[test]
fn every_row_gives_jqs_value_or_fails_without_writing() {
    let env = TestStore::new();
    let mut failures = Vec::new();
    let mut same = 0;
    for (i, row) in ROWS.iter().enumerate() {
        let key = format!("k{i}");
        env.put(&key, row.input);
        let out = env
            .cmd()
            .args(["edit", &key, "--jq", row.filter])
            .output()
            .unwrap();
        let stored = String::from_utf8(env.file(&key).unwrap()).unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("{:?} on {}", row.filter, row.input);
        let unchanged = stored == row.input;
        match (&row.jq, &row.ours) {
            (Out(expected) | Jq17(expected), Same) => {
                if !out.status.success() {
                    failures.push(format!("{what}: failed ({stderr}), jq gives {expected}"));
                } else if compact(&stored) != compact(expected) {
                    failures.push(format!("{what}: wrote {stored}, jq gives {expected}"));
                } else {
                    same += 1;
                }
            }
            (Error, Same) => {
                if out.status.success() || !unchanged {
                    failures.push(format!("{what}: jq fails, etagstore wrote {stored}"));
                } else {
                    same += 1;
                }
            }
            (_, Differs(reason)) => {
                if out.status.success() {
                    let matches =
                        matches!(row.jq, Out(e) | Jq17(e) if compact(e) == compact(&stored));
                    failures.push(if matches {
                        format!("{what}: now matches jq; mark the row Same")
                    } else {
                        format!("{what}: a known difference ({reason}) wrote {stored}")
                    });
                } else if !unchanged {
                    failures.push(format!("{what}: failed but changed the document"));
                }
            }
        }
    }
    eprintln!("jq_compat: {same} of {} rows give jq's value", ROWS.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The python with the PyPI `jq` package, if there is one.
fn oracle() -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("ETAGSTORE_JQ_ORACLE") {
        return Some(python.into());
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-jq/bin/python");
    venv.exists().then_some(venv)
}

#[test]
fn the_table_agrees_with_a_real_jq() {
    let oracle = oracle();
    if !crate::common::require(
        oracle.is_some(),
        "no real jq (run scripts/jq-oracle.sh to make .venv-jq)",
    ) {
        return;
    }
    let python = oracle.expect("required above");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/jq_oracle.py");
    let pairs: Vec<(&str, &str)> = ROWS.iter().map(|row| (row.filter, row.input)).collect();
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = serde_json::to_vec(&pairs).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let results: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_slice(&output.stdout).unwrap();
    let mut wrong = Vec::new();
    for (row, result) in ROWS.iter().zip(results) {
        let by_jq = result.get("ok").and_then(|v| v.as_str()).map(compact);
        let expected = match row.jq {
            Out(text) => Some(compact(text)),
            Error => None,
            Jq17(_) => continue,
        };
        if by_jq != expected {
            wrong.push(format!(
                "{:?} on {}: the table says {expected:?}, jq gives {by_jq:?} {:?}",
                row.filter,
                row.input,
                result.get("err")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runs `edit k --jq FILTER` on a fresh `k` holding `doc`; returns the
/// output and the stored document afterwards.
fn edit(filter: &str, doc: &str) -> (std::process::Output, String) {
    let env = TestStore::new();
    env.put("k", doc);
    let out = env
        .cmd()
        .args(["edit", "k", "--jq", filter])
        .output()
        .unwrap();
    let stored = String::from_utf8(env.file("k").unwrap()).unwrap();
    (out, stored)
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn halt_error_is_exit_1_with_its_message_and_writes_nothing() {
    for (filter, says) in [
        (
            r#""bye\n" | halt_error"#,
            "halt_error (exit code 5); nothing written: bye\n",
        ),
        (
            r#"{"a":1} | halt_error(3)"#,
            "halt_error (exit code 3); nothing written: {\"a\":1}\n",
        ),
        (
            "halt_error(1)",
            "halt_error (exit code 1); nothing written: {\"n\":1}\n",
        ),
        ("halt(4)", "halt(4); nothing written\n"),
    ] {
        let (out, stored) = edit(filter, r#"{"n":1}"#);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{filter}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.ends_with(says),
            "{filter}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{filter}: {stderr}");
        assert_eq!(stored, r#"{"n":1}"#);
    }
}

#[test]
fn halt_stops_without_a_change() {
    for filter in ["halt", ".n += 1 | halt", r#""note" | halt_error(0)"#] {
        let (out, stored) = edit(filter, r#"{"n":1}"#);
        assert!(out.status.success(), "{filter}: {}", stderr_of(&out));
        assert_eq!(stored, r#"{"n":1}"#, "{filter}");
    }
    let (out, _) = edit(r#""note" | halt_error(0)"#, "1");
    assert_eq!(stderr_of(&out), "note");
    // One value and then halt: jq prints the value, so edit writes it.
    let (out, stored) = edit(".n += 1 | ., halt", r#"{"n":1}"#);
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(stored, "{\n  \"n\": 2\n}\n");
}

#[test]
fn debug_and_stderr_print_to_standard_error_as_jq_does() {
    let (out, stored) = edit(".n += 1 | debug | debug(\"m\")", r#"{"n":1}"#);
    assert!(out.status.success());
    assert_eq!(
        stderr_of(&out),
        "[\"DEBUG:\",{\"n\":2}]\n[\"DEBUG:\",\"m\"]\n"
    );
    assert_eq!(stored, "{\n  \"n\": 2\n}\n");
    let (out, _) = edit(r#"stderr | ("x" | stderr) | ."#, r#"{"n":[1]}"#);
    assert!(out.status.success());
    assert_eq!(stderr_of(&out), "{\"n\":[1]}x");
}

#[test]
fn a_10000_deep_filter_is_exit_2_and_writes_nothing() {
    let n = 10_000;
    for filter in [
        vec!["."; n].join(" | "),
        vec!["1"; n].join(" + "),
        format!("{}.{}", "(".repeat(n), ")".repeat(n)),
        format!("{}{}", "[".repeat(n), "]".repeat(n)),
        format!("{} = 1", ".a".repeat(n)),
    ] {
        let (out, stored) = edit(&filter, "{}");
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("tokens; edit --jq takes filters of up to"),
            "{stderr}"
        );
        assert!(
            stderr.len() < 400,
            "the message quotes the whole filter: {stderr}"
        );
        assert_eq!(stored, "{}");
    }
    // Deep but within the limit: runs (the result is too deep to store: exit 6).
    let (out, stored) = edit(&format!("{}1{}", "[".repeat(1500), "]".repeat(1500)), "{}");
    assert_eq!(out.status.code(), Some(6), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("nested deeper than 128"));
    assert_eq!(stored, "{}");
    let (out, _) = edit(&vec![".n"; 1000].join(" | "), r#"{"n":{"n":1}}"#);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
}

#[test]
fn errors_are_worded_as_jq_words_them() {
    for (filter, doc, says) in [
        (".n += 5", "200", r#"Cannot index number with string ("n")"#),
        (".[0]", "{}", "Cannot index object with number (0)"),
        (".a", "[]", r#"Cannot index array with string ("a")"#),
        (".[]", "5", "Cannot iterate over number (5)"),
        (".[-3] = 1", "[1]", "Out of bounds negative array index"),
        ("error({\"a\":1})", "{}", "{\"a\":1} (not a string)"),
    ] {
        let (out, stored) = edit(filter, doc);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(1), "{filter}: {stderr}");
        assert_eq!(stderr, format!("error: the filter failed: {says}\n"));
        assert_eq!(stored, doc);
    }
}

#[test]
fn recursion_deeper_than_the_stack_is_exit_2_and_writes_nothing() {
    // A filter of more than 256 tokens runs on its own thread: pad one.
    let padded = |filter: &str| format!("{filter}{}", " | .".repeat(300));
    let deep = |n: u32| format!("reduce range({n}) as $i (null; [.])");
    for filter in [
        "def f: if . > 0 then . - 1 | f | . + 1 else . end; 1000000 | f".to_string(),
        "def f: [f]; f".to_string(),
        // freeing, printing or comparing a value nested this deep recurses as deep
        format!("{} | 0", deep(300_000)),
        format!("{} | tojson | length", deep(300_000)),
        format!("[{}, {}] | .[0] == .[1]", deep(200_000), deep(200_000)),
        padded("def f: [f]; f"),
    ] {
        // A hard stack limit of 16 MiB (the main thread may grow to 112 MiB
        // otherwise), so that the deep values above overflow it quickly.
        let env = TestStore::new();
        env.put("k", r#"{"n":1}"#);
        let mut cmd = env.process();
        cmd.args(["edit", "k", "--jq", &filter]);
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 16 << 20,
                    rlim_max: 16 << 20,
                };
                libc::setrlimit(libc::RLIMIT_STACK, &limit);
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let stored = String::from_utf8(env.file("k").unwrap()).unwrap();
        let stderr = stderr_of(&out);
        let shown = &filter[..filter.len().min(60)];
        assert_eq!(out.status.code(), Some(2), "{shown}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains("too deep"),
            "{shown}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{shown}: {stderr}");
        assert_eq!(stored, r#"{"n":1}"#);
    }
}

#[test]
fn a_stack_overflow_under_error_format_json_is_one_json_object() {
    let env = TestStore::new();
    env.put("k", r#"{"n":1}"#);
    let out = env
        .process()
        .args(["--error-format", "json", "edit", "k", "--jq"])
        .arg("def f: if . > 0 then . - 1 | f | . + 1 else . end; 100000000 | f")
        .output()
        .unwrap();
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let error: serde_json::Value = serde_json::from_str(&stderr).expect(&stderr);
    assert_eq!(error["code"], "usage");
    assert_eq!(error["exit"], 2);
    assert!(error["message"].as_str().unwrap().contains("too deep"));
    assert_eq!(env.file("k").unwrap(), br#"{"n":1}"#);
}
