# etagstore's definitions, loaded after jaq's: jq 1.7.1's meaning where
# jaq's differs, and jq builtins that jaq lacks. Later definitions win.

# halt_error stops the filter and hands its input to etagstore (src/jq.rs),
# which reports it; jaq's would exit the process.
def halt_error($code): halt_error_native($code);
def halt_error: halt_error(5);

# Deletion, as jq does it: all paths first, deleted from the last in sorted
# order, so that deleting [0] does not shift the element [2] names; a path
# through a missing (null) value deletes nothing.
def _delpath($p):
  if $p == [] then null
  elif . == null then null
  elif ($p | length) == 1 then .[$p[0]] |= empty
  else $p[0] as $k | if .[$k] == null then . else .[$k] |= _delpath($p[1:]) end
  end;
# jq deletes all paths relative to the value as it was: a negative index or
# a slice is made absolute first, so deleting one element does not move
# what another path names.
def _abspath($p):
  if $p == [] then []
  else $p[0] as $k
    | (if type == "array" and ($k | type) == "number" and $k < 0 then $k + length
       elif type == "array" and ($k | type) == "object" then
         length as $n
         | {start: ($k.start // 0 | if . < 0 then . + $n else . end | if . < 0 then 0 else floor end),
            end: ($k.end // $n | if . < 0 then . + $n else . end | if . > $n then $n else ceil end)}
       else $k end) as $a
    | [$a] + (if ($a | type) == "number" and $a < 0 then $p[1:]
              else (.[$a]? // null | _abspath($p[1:])) end)
  end;
def delpaths($paths):
  if ($paths | type) != "array" then error("Paths must be specified as an array")
  elif any($paths[]; length > 10000) then error("Path too deep")
  else . as $top
    | reduce ($paths | map(. as $p | $top | _abspath($p)) | unique | reverse[]) as $p (.; _delpath($p))
  end;
def del(f): delpaths([path(f)]);

# `|=`, `=`, `+=`, ... in the filter are rewritten to _modify_native
# (src/jq/rewrite.rs, src/jq/funs.rs): jq 1.8's _modify and _assign.
def _modify(paths; update): _modify_native(paths; update);
def _assign(paths; $value): _modify_native(paths; $value);

# Paths and streams (jq 1.7.1's definitions).
def leaf_paths: paths(scalars);
def pick(pathexps): . as $top | reduce path(pathexps) as $p (null; setpath($p; $top | getpath($p)));
def _tostream_r: (.[]? | _tostream_r), .;
def tostream: path(_tostream_r) as $p | getpath($p) | reduce path(.[]?) as $q ([$p, .]; [$p + $q]);
def fromstream(f): { x: null, e: false } as $init
  | foreach f as $i ($init;
      if .e then $init else . end
      | if $i | length == 2
        then setpath(["e"]; $i[0] | length == 0) | setpath(["x"] + $i[0]; $i[1])
        else setpath(["e"]; $i[0] | length == 1) end;
      if .e then .x else empty end);
def truncate_stream(stream): . as $n | null | stream | . as $input
  | if (.[0] | length) > $n then setpath([0]; .[0][$n:]) else empty end;

# SQL-style builtins.
def IN(s): any(s == .; .);
def IN(src; s): any(src == s; .);
def INDEX(stream; idx_expr): reduce stream as $row ({}; .[$row | idx_expr | tostring] |= $row);
def INDEX(idx_expr): INDEX(.[]; idx_expr);
def JOIN($idx; idx_expr): [.[] | [., $idx[idx_expr]]];
def JOIN($idx; stream; idx_expr): stream | [., $idx[idx_expr]];
def JOIN($idx; stream; idx_expr; join_expr): stream | [., $idx[idx_expr]] | join_expr;

# Objects (jq 1.7.1's: also the key names k, name, Name, K and Key).
def from_entries: reduce .[] as $x ({};
    . + { ($x | if .key == null then .k // .name // .Name // .K // .Key else .key end
             | if type == "string" then . else tojson end):
          ($x | if has("value") then .value elif has("v") then .v else .Value end) });
def with_entries(f): to_entries | map(f) | from_entries;

# jq's walk is bottom-up: children first, then f on the rebuilt parent.
def walk(f): def w: if type == "object" then map_values(w) elif type == "array" then map(w) else . end | f; w;

# The document comes from the store, not a file: jq says null for stdin.
def input_filename: null;

# jaq defines these by dividing by zero, which is an error in jq (and here).
def infinite: 1e1000 + 0;
def nan: infinite - infinite;
# A definition sees the ones before it: jaq's users of nan and infinite
# are defined again here so that they see these.
def isnan: . < nan and nan < .;
def isinfinite: . == infinite or . == -infinite;
def isfinite: isnumber and (isinfinite | not);
def isnormal: isnumber and ((. == 0 or isnan or isinfinite) | not);
def finites: select(isfinite);
def normals: select(isnormal);
def logb:
    if . == 0.0 then -infinite
  elif isinfinite then infinite
  elif isnan then .
  else ilogb | . + 0.0 end;
# jq's gamma is the logarithm of the gamma function (jaq's is tgamma).
def gamma: lgamma;
def significand:
    if isinfinite or isnan then .
  elif . == 0.0 then 0
  else scalbln(.; ilogb | -1 * .) end;

# Strings.
def tonumber: tonumber_native;
# jq 1.8: numbers and booleans are written out; arrays and objects are an
# error (string + array).
def join($x): reduce .[] as $i (null;
    (if . == null then "" else . + $x end)
    + ($i | if . == null then "" elif type == "boolean" or type == "number" then tojson else . end)
  ) // "";
# Regular expressions: jq 1.8's definitions over _match_impl (src/jq/funs.rs),
# which steps through the string as jq does and reports a group that took no
# part in a match as jq does (offset -1, string null).
def match(re; mode): _match_impl(re; mode; false) | .[];
def _re_args(f):
  (type) as $t
  | if $t == "string" then [., null]
    elif $t == "array" and length > 1 then [.[0], .[1]]
    elif $t == "array" and length > 0 then [.[0], null]
    else error("\($t) not a string or array") end;
def match($val): ($val | _re_args(.)) as [$re, $flags] | match($re; $flags);
def test(re; mode): _match_impl(re; mode; true);
def test($val): ($val | _re_args(.)) as [$re, $flags] | test($re; $flags);
def capture(re; mods): match(re; mods) | reduce (.captures | .[] | select(.name != null) | { (.name): .string }) as $pair ({}; . + $pair);
def capture($val): ($val | _re_args(.)) as [$re, $flags] | capture($re; $flags);
def scan($re; $flags):
  match($re; "g" + $flags)
  | if (.captures | length > 0) then [.captures | .[] | .string] else .string end;
def scan($re): scan($re; null);
def splits($re; flags): . as $s
  | [match($re; "g" + flags) | (.offset, .offset + .length)]
  | [0] + . + [$s | length]
  | range(0; length; 2) as $i | $s[.[$i]:.[$i + 1]];
def splits($re): splits($re; null);
def split($re; flags): [splits($re; flags)];

def @csv:
  if type != "array" then error("\(type) (\(tojson)) cannot be csv-formatted, only an array can be")
  else map(
      if type == "string" then "\"" + (split("\"") | join("\"\"")) + "\""
      elif type == "number" or type == "boolean" then tostring
      elif . == null then ""
      else error("\(type) (\(tojson)) is not valid in a csv row") end)
    | join(",") end;
def @tsv:
  if type != "array" then error("\(type) (\(tojson)) cannot be tsv-formatted, only an array can be")
  else map(
      if type == "string" then split("\\") | join("\\\\") | split("\t") | join("\\t")
        | split("\n") | join("\\n") | split("\r") | join("\\r")
      elif type == "number" or type == "boolean" then tostring
      elif . == null then ""
      else error("\(type) (\(tojson)) is not valid in a tsv row") end)
    | join("\t") end;
# jq decodes base64 without its padding too.
def @base64d: tostring | . + ("=" * ((4 - length % 4) % 4)) | decode_base64;
def builtins: $__builtins;
def format($f):
  if $f == "text" then @text elif $f == "json" then @json elif $f == "csv" then @csv
  elif $f == "tsv" then @tsv elif $f == "html" then @html elif $f == "uri" then @uri
  elif $f == "sh" then @sh elif $f == "base64" then @base64 elif $f == "base64d" then @base64d
  else error("\($f) is not a valid format") end;
def trimstr($x): ltrimstr($x) | rtrimstr($x);
# Literals are kept as decNumber keeps them (and compared exactly), arithmetic
# is in doubles: what jq 1.8 built with decNumber does.
def have_literal_numbers: true;
def have_decnum: true;

# Counts and depths: jq's errors for negative ones (jaq's limit and skip are
# natives: the names below reach them, being defined before the wrappers).
def _jaq_limit($n; f): limit($n; f);
def _jaq_skip($n; f): skip($n; f);
def limit($n; f): if $n < 0 then error("limit doesn't support negative count") else _jaq_limit($n; f) end;
def skip($n; f): if $n < 0 then error("skip doesn't support negative count") else _jaq_skip($n; f) end;
def nth($n; f): if $n < 0 then error("nth doesn't support negative indices") else first(_jaq_skip($n; f)) end;
def _flatten($x): reduce .[] as $i ([]; if ($i | type) == "array" and $x != 0 then . + ($i | _flatten($x - 1)) else . + [$i] end);
def flatten($x): if $x < 0 then error("flatten depth must not be negative") else _flatten($x) end;
def flatten: _flatten(-1);
def _jaq_utf8bytelength: utf8bytelength;
def utf8bytelength: if type == "string" then _jaq_utf8bytelength else error("\(type) (\(_dump_native)) only strings have UTF-8 byte length") end;
def _jaq_implode: implode;
def implode:
  if type != "array" then error("implode input must be an array")
  else map(if type != "number" then error("\(type) (\(_dump_native)) can't be imploded, unicode codepoint needs to be numeric")
           elif isnan then error("number (null) can't be imploded, unicode codepoint needs to be numeric")
           else floor | if . < 0 or . > 1114111 or (. >= 55296 and . <= 57343) then 65533 else . end end)
    | _jaq_implode end;
# Dates: jq's errors, and a broken-down time shorter than 8 numbers is
# padded with zeros as jq does.
def _jaq_strftime($f): strftime($f);
def _jaq_strflocaltime($f): strflocaltime($f);
def _jaq_mktime: mktime;
def _tm($what):
  if type == "number" then .
  elif type == "array" and all(.[]; type == "number") then (if length < 8 then . + [range(8 - length) | 0] else . end)
  else error("\($what) requires parsed datetime inputs") end;
def strftime($f): if ($f | type) != "string" then error("strftime/1 requires a string format") else _tm("strftime/1") | _jaq_strftime($f) end;
def strflocaltime($f): if ($f | type) != "string" then error("strflocaltime/1 requires a string format") else _tm("strflocaltime/1") | _jaq_strflocaltime($f) end;
def mktime: if type == "array" then _tm("mktime") | _jaq_mktime else error("mktime requires array of 6 numbers") end;
def todateiso8601: strftime("%Y-%m-%dT%H:%M:%SZ");
def todate: todateiso8601;

# Paths longer than jq's limit.
def _jaq_getpath($p): getpath($p);
def _jaq_setpath($p; $x): setpath($p; $x);
def getpath($p): if ($p | length) > 10000 then error("Path too deep") else _jaq_getpath($p) end;
def setpath($p; $x): if ($p | length) > 10000 then error("Path too deep") else _jaq_setpath($p; $x) end;
# jq's helper behind indices on strings, callable as in jq.
def _strindices($i):
  if type != "string" then error("\(type) (\(_dump_native)) cannot be searched, as it is not a string")
  elif ($i | type) != "string" then error("\($i | type) (\($i | _dump_native)) is not a string")
  else indices($i) end;
# jq's sub: the replacement's outputs are zipped over the matches (output i
# of every match builds result i), not combined in every way.
def sub($re; str; $flags): . as $in
  | (reduce match($re; $flags) as $edit ({result: [], previous: 0};
        $in[.previous: $edit.offset] as $gap
        | [$edit.captures | map(select(.name != null) | {key: .name, value: .string}) | from_entries | str] as $inserts
        | reduce range(0; $inserts | length) as $ix (.; .result[$ix] += $gap + $inserts[$ix])
        | .previous = ($edit.offset + $edit.length))
      | .result[] + $in[.previous:])
    // $in;
def sub($re; str): sub($re; str; "");
def gsub($re; str; $flags): sub($re; str; $flags + "g");
def gsub($re; str): sub($re; str; "g");
