# jaq-json 2.0.3's src/defs.jq, copied unchanged below this header (MIT licence,
# Michael Färber), so that etagstore can parse one definition at a time
# (src/jq/defs.rs). A unit test checks that it still equals jaq_json::defs().

# Conversion
def totype(p; e): if p then . else fromjson | if p then . else e end end;
def tonumber : totype(isnumber ; error("cannot parse as number" ));
def toboolean: totype(isboolean; error("cannot parse as boolean"));

# Arrays
def transpose: [range([.[] | length] | max) as $i | [.[][$i]]];

# Indexing
def in(xs)    : . as $x | xs | has     ($x);
def inside(xs): . as $x | xs | contains($x);
def  index($i): indices($i)[ 0];
def rindex($i): indices($i)[-1];

# Formatting
def @json: tojson;

