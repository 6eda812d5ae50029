#!/usr/bin/env bash
# Runs every Go fuzz target for FUZZTIME each (`make fuzz`, FUZZTIME=10s by
# default; `make fuzz FUZZTIME=2m` for a longer hunt). The list below is
# the one place the targets are named: the script stops if a
# `func FuzzX(f *testing.F)` in the tree is missing from it, or if it names
# one that is gone. `make test` runs every target's seed corpus (its f.Add
# calls and testdata/fuzz/FuzzX) as an ordinary test.
#
# A failure leaves the input in PKG/testdata/fuzz/FuzzX/: fix the code and
# commit that file, so the seed corpus keeps the case from coming back.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}

# package       target
targets="
./admin                     FuzzDecodeJSON
./admin                     FuzzDecodePatch
./provider                  FuzzDecodeStrict
./provider                  FuzzMatchRedirectURI
./provider/accounts         FuzzParseImportLine
./provider/federation       FuzzMapClaims
./login-ui                  FuzzLocalPath
./internal/config           FuzzDurationSetting
./internal/config           FuzzRateSetting
./internal/ratelimit        FuzzParseLimit
./internal/clientip         FuzzParseTrustedProxies
./internal/clientip         FuzzClientIP
./internal/httpx            FuzzRejectMalformedText
./internal/httpx            FuzzInvalidJSONText
./internal/brand            FuzzValidColor
./internal/mail             FuzzTemplatesBrandColor
"

listed=$(printf '%s\n' "$targets" | awk 'NF == 2 {print $1, $2}' | sort)
inTree=$(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . |
	sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+).*#\1 \2#' | sort)
if [ "$listed" != "$inTree" ]; then
	echo "scripts/fuzz.sh: the target list and the tree differ (< listed, > in the tree):" >&2
	diff <(printf '%s\n' "$listed") <(printf '%s\n' "$inTree") | grep '^[<>]' >&2 || true
	exit 1
fi

failed=()
start=$SECONDS
while read -r pkg name; do
	printf -- '-- %s %s (%s)\n' "$pkg" "$name" "$FUZZTIME"
	if ! go test -run='^$' -fuzz="^${name}\$" -fuzztime="$FUZZTIME" "$pkg"; then
		failed+=("$pkg $name")
	fi
done <<<"$listed"

echo "-- $(wc -l <<<"$listed") fuzz targets in $((SECONDS - start))s"
if [ ${#failed[@]} -gt 0 ]; then
	printf 'FAILED: %s\n' "${failed[@]}" >&2
	echo "the failing inputs are in each package's testdata/fuzz/; fix the code and commit them" >&2
	exit 1
fi
