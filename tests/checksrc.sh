#!/usr/bin/env bash
# Checks that keep the shape of the source tree (in the spirit of curl's checksrc): fast, bash + grep/awk, one
# file:line message per finding, a summary of which check failed, and a non-zero exit when one did.
#
#   tests/checksrc.sh              every check
#   tests/checksrc.sh --no-format  without the clang-format check
#
# 1. Banned calls, in src/ and in the C files of tests/: functions that overflow buffers, parse numbers without
#    an error report, keep hidden static state or are not reentrant. Comments and string literals are not looked
#    at.
# 2. The include graph of src/: a module includes its own headers and those of the layers below it, never above:
#
#        core -> net -> http -> { db, cache, outbound, storage, json, auth, jobs } -> api -> main.c
#
#    The modules of the middle group do not include each other, except through the edges listed in
#    ALLOWED_EDGES. src/settings.{c,h} (the server's settings table, read by the API and main.c) counts as part
#    of the api level.
# 3. Formatting: clang-format 14 --dry-run -Werror against the checked-in .clang-format, over src/ and the C files
#    of tests/.
set -uo pipefail
cd "$(dirname "$0")/.."

format=1
for arg in "$@"; do
    case "$arg" in
    --no-format) format=0 ;;
    -h | --help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "checksrc: unknown argument $arg (try --help)" >&2; exit 2 ;;
    esac
done

# Each banned function and what to use instead.
BANNED=(
    "sprintf:snprintf or sc_buf_printf"
    "vsprintf:vsnprintf or sc_buf_vprintf"
    "strcpy:memcpy with a known length, or snprintf"
    "stpcpy:memcpy with a known length"
    "strcat:sc_buf or snprintf"
    "strncat:sc_buf or snprintf"
    "strncpy:memcpy with a known length, or snprintf (strncpy neither terminates nor reports truncation)"
    "gets:fgets"
    "atoi:sc_slice_to_u64 or strtol with an end pointer and errno"
    "atol:sc_slice_to_u64 or strtol with an end pointer and errno"
    "atoll:sc_slice_to_u64 or strtoll with an end pointer and errno"
    "atof:strtod with an end pointer and errno"
    "strtok:strtok_r, or walking an sc_slice"
    "tmpnam:mkstemp"
    "tempnam:mkstemp"
    "mktemp:mkstemp"
    "gmtime:gmtime_r"
    "localtime:localtime_r"
    "ctime:strftime with gmtime_r"
    "asctime:strftime with gmtime_r"
    "rand:sc_random_bytes (rand is unseeded: forked workers would all draw the same numbers)"
    "srand:sc_random_bytes"
    "alloca:a fixed-size array or sc_arena_alloc"
)

# Layers of src/ (a higher number may include a lower one); the middle group shares one number.
declare -A LAYER=([core]=0 [net]=1 [http]=2 [db]=3 [cache]=3 [outbound]=3 [storage]=3 [json]=3 [auth]=3 [jobs]=3
    [api]=4 [settings]=4 [main]=5)
# Includes allowed between modules of the middle group, "from->to", each with its reason.
ALLOWED_EDGES=(
    "auth->json" # a JWT's payload is a JSON object, written with json/write.h
    "jobs->db"   # the job queue lives in PostgreSQL: the runtime claims and records through the pool and LISTEN
)

failed_checks=()
count_banned=0
count_include=0
count_format=0

# ---- 1. banned calls --------------------------------------------------------------------------------------------

banned_names=$(printf '%s\n' "${BANNED[@]}" | cut -d: -f1 | paste -sd'|')
banned_hints=$(printf '%s\n' "${BANNED[@]}" | paste -sd'\t')
c_files=$({ find src -name '*.[ch]'; find tests -name '*.[ch]'; } | LC_ALL=C sort)

# awk: blanks out comments, string and character literals (keeping the line structure), then reports calls.
banned_out=$(awk -v names="$banned_names" -v hints="$banned_hints" '
    BEGIN {
        n = split(hints, h, "\t")
        for (i = 1; i <= n; i++) { k = index(h[i], ":"); hint[substr(h[i], 1, k - 1)] = substr(h[i], k + 1) }
        re = "(^|[^A-Za-z0-9_.>$])(" names ")[ \t]*\\("
    }
    FNR == 1 { in_comment = 0 }
    {
        line = $0; out = ""; i = 1; len = length(line)
        while (i <= len) {
            c = substr(line, i, 1); c2 = substr(line, i, 2)
            if (in_comment) {
                if (c2 == "*/") { in_comment = 0; i += 2; out = out "  " } else { i++; out = out " " }
                continue
            }
            if (c2 == "/*") { in_comment = 1; i += 2; out = out "  "; continue }
            if (c2 == "//") break
            if (c == "\"" || c == "\047") {
                q = c; out = out q; i++
                while (i <= len) {
                    d = substr(line, i, 1)
                    if (d == "\\") { i += 2; out = out "  "; continue }
                    i++
                    if (d == q) break
                    out = out " "
                }
                out = out q
                continue
            }
            out = out c; i++
        }
        rest = out
        while (match(rest, re)) {
            m = substr(rest, RSTART, RLENGTH)
            sub(/^[^A-Za-z_]/, "", m); sub(/[ \t]*\($/, "", m)
            printf "%s:%d: banned call %s(): use %s\n", FILENAME, FNR, m, hint[m]
            rest = substr(rest, RSTART + RLENGTH)
        }
    }' $c_files)
if [ -n "$banned_out" ]; then
    printf '%s\n' "$banned_out"
    count_banned=$(printf '%s\n' "$banned_out" | wc -l)
    failed_checks+=("banned calls ($count_banned)")
fi

# ---- 2. include graph -------------------------------------------------------------------------------------------

module_of() { # src path -> module
    case "$1" in
    src/main.c) echo main ;;
    src/settings.c | src/settings.h) echo settings ;;
    src/*/*) local p=${1#src/}; echo "${p%%/*}" ;;
    *) echo "?" ;;
    esac
}

include_out=""
while IFS= read -r file; do
    from=$(module_of "$file")
    if [ -z "${LAYER[$from]+x}" ]; then
        include_out+="$file:1: module '$from' is not in the layer map of tests/checksrc.sh"$'\n'
        continue
    fi
    while IFS=: read -r line inc; do
        [ -n "$line" ] || continue
        case "$inc" in
        settings.h) to=settings ;;
        */*) to=${inc%%/*} ;;
        *) [ -f "$(dirname "$file")/$inc" ] && to=$from || continue ;; # a header of the same directory, or external
        esac
        [ "$to" = "$from" ] && continue
        if [ -z "${LAYER[$to]+x}" ]; then
            include_out+="$file:$line: includes \"$inc\" of '$to', which is not in the layer map"$'\n'
        elif [ "${LAYER[$to]}" -gt "${LAYER[$from]}" ]; then
            include_out+="$file:$line: upward include: $from includes \"$inc\" ($to is above $from)"$'\n'
        elif [ "${LAYER[$to]}" -eq "${LAYER[$from]}" ] && [ "${LAYER[$from]}" -eq 3 ]; then
            allowed=0
            for e in "${ALLOWED_EDGES[@]}"; do [ "$e" = "$from->$to" ] && allowed=1; done
            [ $allowed = 1 ] ||
                include_out+="$file:$line: $from includes \"$inc\": modules beside each other ($from, $to) may not include each other (ALLOWED_EDGES)"$'\n'
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" | sed -E 's/^([0-9]+):[^"]*"([^"]*)".*/\1:\2/')
done < <(find src -name '*.[ch]' | LC_ALL=C sort)
if [ -n "$include_out" ]; then
    printf '%s' "$include_out"
    count_include=$(printf '%s' "$include_out" | wc -l)
    failed_checks+=("include graph ($count_include)")
fi

# ---- 3. formatting ----------------------------------------------------------------------------------------------

if [ $format = 1 ]; then
    cf=""
    for c in clang-format-14 clang-format; do
        if command -v "$c" >/dev/null && "$c" --version | grep -q 'version 14\.'; then cf=$c; break; fi
    done
    if [ -z "$cf" ]; then
        echo "checksrc: clang-format 14 not found (deps/install.sh test installs it; --no-format skips the check)"
        failed_checks+=("format (no clang-format 14)")
    else
        format_files=$({ find src -name '*.[ch]'; find tests -name '*.c'; } | LC_ALL=C sort)
        # One warning per file is enough to point at it: the first line clang-format would change.
        format_out=$("$cf" --style=file --dry-run -Werror $format_files 2>&1 | awk -F: '
            /: error: code should be clang-formatted/ && !seen[$1]++ {
                printf "%s:%s: not formatted as .clang-format says (clang-format -i %s)\n", $1, $2, $1
            }')
        if [ -n "$format_out" ]; then
            printf '%s\n' "$format_out"
            count_format=$(printf '%s\n' "$format_out" | wc -l)
            failed_checks+=("format ($count_format of $(echo $format_files | wc -w) files)")
        fi
    fi
fi

# ---- summary ----------------------------------------------------------------------------------------------------

if [ ${#failed_checks[@]} -gt 0 ]; then
    echo "checksrc: FAILED: $(printf '%s, ' "${failed_checks[@]}" | sed 's/, $//')"
    exit 1
fi
if [ $format = 1 ]; then
    echo "checksrc: banned calls, include graph and format: ok"
else
    echo "checksrc: banned calls and include graph: ok (format not checked)"
fi
