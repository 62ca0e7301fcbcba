#!/bin/sh
# build.sh MUSL_GCC OUT DEPFILE YAJL_A YAJL_INCLUDEDIR BUILD_INC SRCDIR SOURCE... - builds
# flox-runc-hook: each source compiled by musl-gcc with the project's
# warnings (errors), linked statically with Debian's libyajl_s.a and the
# unused sections dropped; DEPFILE lists every header read (ninja rebuilds
# on a change).  musl's include path has no kernel headers: the ones used
# (linux/, asm/, asm-generic/) and yajl's are linked into a directory of
# their own, so nothing else of glibc's headers can be picked up.
set -eu
cc=$1 out=$2 depfile=$3 yajl_a=$4 yajl_inc=$5 build_inc=$6 srcdir=$7
shift 7
work=$out.d
rm -rf "$work"
mkdir -p "$work/include"
ma=$(gcc -print-multiarch 2>/dev/null || true)
asm=/usr/include/asm
[ -n "$ma" ] && [ -d "/usr/include/$ma/asm" ] && asm=/usr/include/$ma/asm
yajl=$yajl_inc/yajl # pkg-config's includedir: /usr/include or /usr/include/yajl
[ -d "$yajl" ] || yajl=$yajl_inc
[ -f "$yajl/yajl_tree.h" ] || { echo "flox-runc-hook: no yajl headers under $yajl_inc" >&2; exit 1; }
for d in /usr/include/linux /usr/include/asm-generic "$asm" "$yajl"; do
	[ -d "$d" ] || { echo "flox-runc-hook: $d is missing (install linux-libc-dev and libyajl-dev)" >&2; exit 1; }
	ln -s "$d" "$work/include/$(basename "$d")"
done
flags="-std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
 -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter -Wvla -Wpointer-arith -Wcast-align
 -fno-common -ffunction-sections -fdata-sections -isystem $work/include -I$build_inc
 -I$srcdir/lib"
objs=
deps=
i=0
for src in "$@"; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	"$cc" $flags -MD -MF "$work/$i.d" -c "$src" -o "$work/$i.o"
	objs="$objs $work/$i.o"
	deps="$deps $work/$i.d"
done
# shellcheck disable=SC2086
"$cc" -static -s -Wl,--gc-sections -o "$out.tmp" $objs "$yajl_a"
mv -f "$out.tmp" "$out"
# one rule for ninja: the program depends on every header any source read
{
	printf '%s:' "$out"
	# shellcheck disable=SC2086
	cat $deps | sed -e 's/^[^:]*://' -e 's/\\$//' | tr -s ' \n' '\n\n' | grep -v '^$' | sort -u |
		while read -r f; do printf ' \\\n %s' "$f"; done
	printf '\n'
} >"$depfile"
rm -rf "$work"
