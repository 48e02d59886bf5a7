# Sourced by the bad-input tests. expect CODE NEEDLE -- command...: the
# command exits with CODE and prints exactly one stderr line containing
# NEEDLE; a mismatch is printed and sets fail=1. Needs $tmp (a scratch
# directory) and $fail.
expect() {
  code=$1 needle=$2
  shift 3
  "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  got=$?
  lines=$(wc -l <"$tmp/stderr")
  if [ "$got" -ne "$code" ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$needle" "$tmp/stderr"; then
    echo "FAIL: $* -> exit $got (want $code), $lines stderr line(s), want '$needle':"
    cat "$tmp/stderr"
    fail=1
  else
    echo "ok: $(cat "$tmp/stderr")"
  fi
}
