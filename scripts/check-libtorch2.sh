#!/usr/bin/env bash
# check-libtorch2.sh: proves the project against Debian trixie's LibTorch 2.6
# while the machine itself runs Debian 12 (bookworm) with LibTorch 1.13.
#
#   --compile  (fast, run by CTest as cli.libtorch2_compile)
#       Type-checks every translation unit (TU) that includes LibTorch against
#       the LibTorch 2.6 headers, twice: the CPU build (trixie main's
#       libtorch-dev) and the CUDA build (trixie contrib's libtorch-cuda-dev,
#       with ASR_WITH_CUDA, USE_C10D_NCCL and the CUDA toolkit's headers), so
#       the NCCL code is checked too. Nothing is installed: the .deb files are
#       fetched with a private apt configuration and unpacked with dpkg -x
#       into a cache folder.
#   --full     (slow, on demand)
#       Creates a Debian trixie root with debootstrap (once, cached), installs
#       the build dependencies there under their trixie names, builds the
#       project against LibTorch 2.6 and runs the whole CTest suite, then
#       configures, builds and links asr_ddp against the CUDA LibTorch.
#
# Usage: scripts/check-libtorch2.sh --compile [--build-dir DIR] [options]
#        scripts/check-libtorch2.sh --full [options]
# Options:
#   --build-dir DIR  take the TUs and their flags from DIR/compile_commands.json
#                    (default: configure a scratch build dir in the cache; only
#                    CMake's configure step runs, which takes seconds)
#   --cache DIR      cache folder (default below)
#   --jobs N         parallel compiler processes (default: nproc)
#   --refresh        fetch the packages again (to pick up a new trixie upload)
#   --no-result-cache  compile every TU even when an identical one passed before
#   -h, --help
#
# The cache folder is ${ASR_LIBTORCH2_CACHE:-/var/cache/asr-libtorch2}, or
# ${XDG_CACHE_HOME:-~/.cache}/asr-libtorch2 when that is not writable. It sits
# outside the checkout so that cleaning a build tree keeps it. Layout:
#   apt/             private apt configuration, package lists and state
#   debs/            the downloaded .deb files
#   roots/cpu/       dpkg -x of libtorch-dev + libgloo-dev         (~50 MB)
#   roots/cuda/      dpkg -x of libtorch-cuda-dev + libgloo-cuda-dev (~50 MB)
#   configure/       scratch CMake build dirs (configure step only)
#   pch/<variant>/   precompiled LibTorch header per variant      (~600 MB each)
#   results/ok/      one empty file per TU input that compiled cleanly
#   full/            --full: the trixie root, its build dirs and logs (GBs)
# Removing the folder is always safe; the next run fetches and rebuilds.
#
# Exit status: 0 all good, 1 a failure (compiler errors are printed), 2 usage,
# 77 the Debian mirror is unreachable and nothing is cached (CTest: skipped).
#
# Environment: ASR_LIBTORCH2_CACHE (cache folder), ASR_LIBTORCH2_MIRROR
# (default http://deb.debian.org/debian), ASR_LIBTORCH2_KEYRING (keyring that
# signs trixie; default /usr/share/keyrings/debian-archive-keyring.gpg),
# CUDA_HOME and NCCL_HOME (where cuda_runtime.h and nccl.h are).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mirror=${ASR_LIBTORCH2_MIRROR:-http://deb.debian.org/debian}
suite=trixie
start_time=$(date +%s)

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
say() { printf 'libtorch2: %s\n' "$*"; }
warn() { printf 'libtorch2: warning: %s\n' "$*" >&2; }
die() { printf 'libtorch2: error: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }
elapsed() { echo $(($(date +%s) - ${1:-$start_time})); }

usage() { sed -n '2,/^set -euo pipefail/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------
mode=""
build_dir=""
cache=""
jobs=$(nproc)
refresh=0
result_cache=1
while (($#)); do
  case $1 in
    --compile | --full) mode=${1#--} ;;
    --build-dir) build_dir=$(cd "${2:?--build-dir needs a directory}" && pwd); shift ;;
    --cache) cache=${2:?--cache needs a directory}; shift ;;
    --jobs) jobs=${2:?--jobs needs a number}; shift ;;
    --refresh) refresh=1 ;;
    --no-result-cache) result_cache=0 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done
[[ -n "$mode" ]] || { usage >&2; exit 2; }
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "--jobs wants a positive number, not '$jobs'"

# The cache: the first writable of --cache, $ASR_LIBTORCH2_CACHE,
# /var/cache/asr-libtorch2 and ~/.cache/asr-libtorch2.
pick_cache() {
  local dir
  for dir in "$@"; do
    [[ -n "$dir" ]] || continue
    if mkdir -p "$dir" 2>/dev/null && [[ -w "$dir" ]]; then
      cd "$dir" && pwd
      return
    fi
  done
  return 1
}
if [[ -n "$cache" ]]; then
  cache=$(pick_cache "$cache") || die "cannot create or write the cache folder $cache"
else
  cache=$(pick_cache "${ASR_LIBTORCH2_CACHE:-}" /var/cache/asr-libtorch2 \
    "${XDG_CACHE_HOME:-$HOME/.cache}/asr-libtorch2") || die "no writable cache folder (set ASR_LIBTORCH2_CACHE)"
fi
# Paths end up in sed expressions and compiler flags below.
[[ "$cache" != *[[:space:]\|\\]* ]] || die "the cache path must not contain blanks, '|' or '\\': $cache"
say "cache: $cache"

# One run per mode at a time per cache: a second run waits instead of racing
# on the precompiled headers or the trixie root. The private apt state has
# its own lock (lock_apt), taken only while fetching.
exec 9>>"$cache/.lock-$mode"
if ! flock -n 9; then
  say "another --$mode run holds $cache/.lock-$mode; waiting for it"
  flock 9
fi
lock_apt() {
  exec 8>>"$cache/.lock-apt"
  flock 8
}

# ---------------------------------------------------------------------------
# Private apt: fetch .deb files from trixie without touching /etc/apt or the
# system's apt/dpkg state. Everything apt reads or writes lives in
# $cache/apt: its own sources.list, lists, archives and an empty dpkg status.
# ---------------------------------------------------------------------------
apt_dir=$cache/apt
keyring=${ASR_LIBTORCH2_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}

# write_apt_conf NAME "SOURCES LINES": a self-contained apt configuration in
# $apt_dir/NAME; prints the path of its apt.conf (use it as APT_CONFIG).
write_apt_conf() {
  local name=$1 sources=$2 dir=$apt_dir/$1
  mkdir -p "$dir"/{lists/partial,archives/partial,parts,preferences.d,trusted.gpg.d,log}
  printf '%s\n' "$sources" >"$dir/sources.list"
  # apt reads APT_CONFIG first and then only the files it names, so pointing
  # every Dir::Etc entry into $dir keeps /etc/apt out entirely.
  cat >"$dir/apt.conf" <<EOF
Dir::Etc::main "/dev/null";
Dir::Etc::Parts "$dir/parts";
Dir::Etc::SourceList "$dir/sources.list";
Dir::Etc::SourceParts "/dev/null";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$dir/preferences.d";
Dir::Etc::Trusted "/dev/null";
Dir::Etc::TrustedParts "$dir/trusted.gpg.d";
Dir::State "$dir";
Dir::State::Lists "$dir/lists";
Dir::State::status "/dev/null";
Dir::Cache "$dir";
Dir::Cache::Archives "$dir/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Dir::Log "$dir/log";
APT::Architecture "$(dpkg --print-architecture)";
APT::Architectures { "$(dpkg --print-architecture)"; };
Acquire::Languages "none";
Acquire::Retries "2";
Acquire::http::Timeout "30";
EOF
  # Downloads run as the unprivileged _apt user when we are root; let it
  # write where it has to (this is our own folder, not the system's).
  if ((EUID == 0)) && id _apt >/dev/null 2>&1; then
    chown -R _apt:root "$dir/lists/partial" "$dir/archives/partial"
  fi
  echo "$dir/apt.conf"
}

# apt_update CONF: refreshes the package lists of that configuration.
# Returns 0 on success, 3 when the mirror is unreachable, 4 when the Release
# signature cannot be verified with the keyring, 1 otherwise.
apt_update() {
  local conf=$1 out rc=0
  out=$(APT_CONFIG=$conf apt-get -q update --error-on=any 2>&1) || rc=$?
  printf '%s\n' "$out" | sed 's/^/  apt: /' >&2
  ((rc == 0)) && return 0
  if grep -Eq "NO_PUBKEY|EXPKEYSIG|not signed|couldn't be verified|signature|OpenPGP" <<<"$out"; then return 4; fi
  if grep -Eq "Could not resolve|Failed to fetch|Connection failed|Unable to connect|timed out|Network is unreachable|No route" <<<"$out"; then return 3; fi
  return 1
}

# trixie_apt_conf: a private apt configuration for trixie with fresh lists;
# prints the path of its apt.conf.
#
# Trust: trixie's Release file must verify with the keyring. trixie's
# InRelease carries signatures by the trixie archive and release keys and by
# the bookworm archive key, so bookworm's debian-archive-keyring verifies it
# (2023.3+deb12u2 also holds the trixie keys). Should the keyring still fail
# (a trimmed or outdated one), a current debian-archive-keyring is taken from
# bookworm itself: bookworm's InRelease is signed with keys the old keyring
# holds, so that package is authenticated by the chain bookworm key ->
# bookworm InRelease -> Packages -> .deb checksum.
trixie_apt_conf() {
  local conf rc=0
  [[ -r "$keyring" ]] || die "keyring $keyring not found (install debian-archive-keyring or set ASR_LIBTORCH2_KEYRING)"
  conf=$(write_apt_conf trixie "deb [signed-by=$keyring] $mirror $suite main contrib")
  apt_update "$conf" >&2 || rc=$?
  if ((rc == 4)); then
    say "$keyring cannot verify $suite; fetching a newer debian-archive-keyring from bookworm" >&2
    local bconf newkeys=$apt_dir/keyring
    bconf=$(write_apt_conf bookworm "deb [signed-by=$keyring] $mirror bookworm main")
    apt_update "$bconf" >&2 || { rc=$?; ((rc == 3)) && return 3; die "cannot verify bookworm with $keyring either"; }
    rm -rf "$newkeys" && mkdir -p "$newkeys/deb"
    ((EUID == 0)) && id _apt >/dev/null 2>&1 && chown _apt:root "$newkeys/deb"
    (cd "$newkeys/deb" && APT_CONFIG=$bconf apt-get -q download debian-archive-keyring) 2>&1 | sed 's/^/  apt: /' >&2
    dpkg -x "$newkeys"/deb/*.deb "$newkeys/root"
    keyring=$newkeys/root/usr/share/keyrings/debian-archive-keyring.gpg
    conf=$(write_apt_conf trixie "deb [signed-by=$keyring] $mirror $suite main contrib")
    rc=0
    apt_update "$conf" >&2 || rc=$?
  fi
  case $rc in
    0) echo "$keyring" >"$apt_dir/trixie/keyring" && echo "$conf" ;;
    3) return 3 ;;
    *) die "apt-get update for $suite failed (see the apt lines above)" ;;
  esac
}

# ---------------------------------------------------------------------------
# The two LibTorch 2.6 header trees, unpacked with dpkg -x.
#
# What the headers need beyond themselves, found by listing every header the
# project's TUs read (g++ -M): only gloo (torch/csrc/distributed/c10d/
# ProcessGroupGloo.hpp includes gloo/*.h), so trixie's libgloo-dev (CPU) or
# libgloo-cuda-dev (CUDA; the two conflict like the two LibTorch packages)
# go into the same root. libtorch-dev's other dependencies, python3-dev and
# libprotobuf-dev, serve headers no project TU reaches. The CUDA variant
# needs cuda_runtime.h and nccl.h, which come from the CUDA toolkit on this
# machine (CUDA_HOME, /usr/local/cuda); nothing else is fetched for it.
# ---------------------------------------------------------------------------
declare -A root_packages=(
  [cpu]="libtorch-dev libgloo-dev"
  [cuda]="libtorch-cuda-dev libgloo-cuda-dev"
)

# ensure_roots: makes $cache/roots/{cpu,cuda} exist. A root with its stamp is
# never fetched again (unless --refresh), so later runs need no network.
ensure_roots() {
  local variant missing=()
  for variant in cpu cuda; do
    if ((refresh)) || [[ ! -f "$cache/roots/$variant/.asr-stamp" ]]; then missing+=("$variant"); fi
  done
  if ((${#missing[@]} == 0)); then
    say "LibTorch 2.6 headers already unpacked: $(stamp_summary)"
    return
  fi
  local t0 conf rc=0
  t0=$(date +%s)
  lock_apt
  say "fetching from $mirror $suite: ${missing[*]} (private apt configuration in $apt_dir)"
  conf=$(trixie_apt_conf) || rc=$?
  if ((rc == 3)); then
    skip "the Debian mirror $mirror is unreachable and $cache has no LibTorch 2.6 yet"
  elif ((rc != 0)); then
    exit 1 # trixie_apt_conf said why
  fi
  mkdir -p "$cache/debs"
  ((EUID == 0)) && id _apt >/dev/null 2>&1 && chown _apt:root "$cache/debs"
  for variant in "${missing[@]}"; do
    local -a pkgs=(${root_packages[$variant]})
    local p tmp=$cache/roots/$variant.new
    (cd "$cache/debs" && APT_CONFIG=$conf apt-get -q download "${pkgs[@]}") |
      sed 's/^/  apt: /' || die "apt-get download ${pkgs[*]} failed"
    rm -rf "$tmp" && mkdir -p "$tmp"
    for p in "${pkgs[@]}"; do
      local version deb
      version=$(APT_CONFIG=$conf apt-cache policy "$p" | sed -n 's/^ *Candidate: //p')
      deb=$(ls "$cache/debs/${p}_${version//:/%3a}_"*.deb)
      dpkg -x "$deb" "$tmp"
      echo "$p=$version" >>"$tmp/.asr-stamp"
    done
    rm -rf "$cache/roots/$variant" && mv "$tmp" "$cache/roots/$variant"
    say "unpacked ${pkgs[*]} into $cache/roots/$variant"
  done
  say "fetched and unpacked in $(elapsed "$t0") s: $(stamp_summary)"
}

stamp_summary() {
  cat "$cache"/roots/{cpu,cuda}/.asr-stamp 2>/dev/null | tr '\n' ' '
}

# LibTorch's version from the unpacked headers (torch/version.h), e.g. 2.6.0.
libtorch_version() {
  local h=$cache/roots/cpu/usr/include/torch/csrc/api/include/torch/version.h
  sed -n 's/^#define TORCH_VERSION_\(MAJOR\|MINOR\|PATCH\) \([0-9]*\)$/\2/p' "$h" | paste -sd.
}

# ---------------------------------------------------------------------------
# What a CMake consumer of each LibTorch gets: the include directories that
# TorchConfig.cmake computes (<prefix>/include and
# <prefix>/include/torch/csrc/api/include), the INTERFACE_COMPILE_DEFINITIONS
# of the imported targets in Caffe2Targets.cmake and TORCH_CXX_FLAGS. Read
# from the package so that a new upload that changes them is followed.
# ---------------------------------------------------------------------------
torch_flags() { # ROOT -> one flag per line
  local root=$1 cmake_dir
  cmake_dir=$(dirname "$(ls "$root"/usr/lib/*/cmake/Torch/TorchConfig.cmake | head -1)")/..
  echo "-isystem" && echo "$root/usr/include"
  echo "-isystem" && echo "$root/usr/include/torch/csrc/api/include"
  # e.g.  INTERFACE_COMPILE_DEFINITIONS "USE_DISTRIBUTED;USE_C10D_GLOO;..."
  # (entries with generator expressions only forward these and are skipped)
  sed -n 's/^ *INTERFACE_COMPILE_DEFINITIONS "\([^"$\\]*\)"$/\1/p' "$cmake_dir/Caffe2/Caffe2Targets.cmake" |
    tr ';' '\n' | sed '/^$/d; s/^/-D/' | awk '!seen[$0]++'
  # e.g.  set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1")
  sed -n 's/^ *set(TORCH_CXX_FLAGS "\(.*\)")$/\1/p' "$cmake_dir/Torch/TorchConfig.cmake" | tr ' ' '\n' | sed '/^$/d'
}

# find_cuda_headers: sets cuda_inc and nccl_inc (empty when not found).
find_cuda_headers() {
  local dir
  cuda_inc="" nccl_inc=""
  for dir in ${CUDA_HOME:+$CUDA_HOME/include} /usr/local/cuda/include /usr/local/cuda-*/include /usr/include; do
    if [[ -f "$dir/cuda_runtime.h" ]]; then cuda_inc=$dir; break; fi
  done
  [[ -n "$cuda_inc" ]] || return 0
  for dir in ${NCCL_HOME:+$NCCL_HOME/include} "$cuda_inc" /usr/include /usr/local/include; do
    if [[ -f "$dir/nccl.h" ]]; then nccl_inc=$dir; break; fi
  done
}

# ---------------------------------------------------------------------------
# The translation units and their flags, from compile_commands.json.
#
# A TU is a candidate when its flags carry LibTorch's include directory
# (.../torch/csrc/api/include), i.e. it belongs to a target that links
# LibTorch. Its flags are rewritten for 2.6:
#   dropped: the old LibTorch include dirs; the defines LibTorch's CMake
#            config exports (USE_*, _GLIBCXX_USE_CXX11_ABI, and in 1.13 also
#            glog's and gflags'); ASR_WITH_CUDA (the project derives it from
#            the LibTorch it found; each variant sets its own); the
#            precompiled-header flags (-include .../cmake_pch.hxx,
#            -Winvalid-pch, clang's -Xclang -include-pch); -o, -c, -M* and
#            the source file;
#   kept:    the project's own -I/-isystem/-D, optimisation and warning flags;
#   -std:    the project's own dialect, raised to C++17 if older (LibTorch
#            2.6's c10/util/C++17.h rejects anything older). CMake compiles
#            the project with gnu++17, so the check does too.
# The rewritten flags, NUL-separated with the compiler first, go to
# OUT/tu-N.args; OUT/index lists N, file, directory and the PCH header the
# build force-included (empty when none).
# ---------------------------------------------------------------------------
select_tus() { # COMPILE_COMMANDS BUILD_DIR OUT
  python3 - "$repo" "$@" <<'PY'
import json, os, re, shlex, sys

src, db, build, out = sys.argv[1:5]
api_suffix = "/torch/csrc/api/include"
old_torch_define = re.compile(r"^(USE_[A-Z0-9_]+|_GLIBCXX_USE_CXX11_ABI|GFLAGS_IS_A_DLL|GLOG_[A-Z0-9_]+|ASR_WITH_CUDA)$")
std_rank = {"98": 98, "03": 103, "0x": 111, "11": 111, "1y": 114, "14": 114, "1z": 117, "17": 117,
            "2a": 120, "20": 120, "2b": 123, "23": 123, "2c": 126, "26": 126}
include_opts = ("-I", "-isystem", "-iquote", "-idirafter")
drop_with_arg = {"-o", "-MF", "-MT", "-MQ"}
drop_alone = {"-c", "-MD", "-MMD", "-Winvalid-pch"}

def split_include(args, i):
    """(option, dir, next index) when args[i] is an include option, else None."""
    for opt in include_opts:
        if args[i] == opt and i + 1 < len(args):
            return opt, args[i + 1], i + 2
        if args[i].startswith(opt) and len(args[i]) > len(opt):  # -I/x (joined)
            return opt, args[i][len(opt):], i + 1
    return None

index, seen, missing = [], set(), []
for entry in json.load(open(db)):
    args = entry.get("arguments") or shlex.split(entry["command"])
    directory = entry["directory"]
    path = os.path.normpath(os.path.join(directory, entry["file"]))
    # Generated sources (CMake's PCH stub) live in the build dir: not ours.
    if not path.startswith(src + "/") or path.startswith(build + "/") or path in seen:
        continue
    dirs = []
    for i in range(len(args)):
        inc = split_include(args, i)
        if inc:
            dirs.append(os.path.normpath(os.path.join(directory, inc[1])))
    api = [d for d in dirs if d.endswith(api_suffix)]
    if not api:
        continue
    seen.add(path)
    if not os.path.exists(path):
        missing.append(path)
        continue
    old_dirs = set(api) | {d[: -len(api_suffix)] for d in api}
    kept, pch, std, i = [args[0]], "", None, 1
    while i < len(args):
        a = args[i]
        inc = split_include(args, i)
        if inc:
            if os.path.normpath(os.path.join(directory, inc[1])) not in old_dirs:
                kept += [inc[0], inc[1]]
            i = inc[2]
            continue
        if a in ("-D", "-U") and i + 1 < len(args):
            a, i = a + args[i + 1], i + 1
        if a.startswith("-D"):
            if not old_torch_define.match(a[2:].split("=", 1)[0]):
                kept.append(a)
        elif a == "-include" and i + 1 < len(args):
            if os.path.basename(args[i + 1]).startswith("cmake_pch"):
                pch = os.path.normpath(os.path.join(directory, args[i + 1]))
            else:
                kept += [a, args[i + 1]]
            i += 1
        elif a == "-Xclang" and i + 3 < len(args) and args[i + 1] in ("-include-pch", "-include"):
            if args[i + 1] == "-include":
                pch = os.path.normpath(os.path.join(directory, args[i + 3]))
            i += 3
        elif a in drop_with_arg:
            i += 1
        elif a in drop_alone or a in (entry["file"], path):
            pass
        elif a.startswith("-std="):
            std = a
        else:
            kept.append(a)
        i += 1
    m = re.match(r"-std=(c|gnu)\+\+(\w\w)$", std or "")
    if not m:
        std = "-std=c++17"
    elif std_rank.get(m.group(2), 0) < 117:
        std = "-std=%s++17" % m.group(1)
    kept.append(std)
    n = len(index)
    with open(os.path.join(out, "tu-%d.args" % n), "w") as f:
        f.write("".join(a + "\0" for a in kept))
    index.append("%d\t%s\t%s\t%s" % (n, path, directory, pch))

with open(os.path.join(out, "index"), "w") as f:
    f.write("".join(line + "\n" for line in index))
for path in missing:
    print("stale compile_commands.json: %s no longer exists" % path, file=sys.stderr)
sys.exit(3 if missing else 0)
PY
}

# compile_commands: prints the path of a compile_commands.json for this
# checkout: --build-dir's, or a scratch configure in the cache.
compile_commands() {
  if [[ -n "$build_dir" ]]; then
    [[ -f "$build_dir/compile_commands.json" ]] ||
      die "$build_dir/compile_commands.json not found (configure with -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)"
    echo "$build_dir/compile_commands.json"
    return
  fi
  local dir t0 generator=()
  dir=$cache/configure/$(printf '%s' "$repo" | sha1sum | cut -c1-12)
  t0=$(date +%s)
  mkdir -p "$dir"
  command -v ninja >/dev/null && [[ ! -f "$dir/CMakeCache.txt" ]] && generator=(-G Ninja)
  say "configuring a scratch build dir $dir (configure only, nothing is built)" >&2
  if ! cmake -S "$repo" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$dir/configure.log" 2>&1; then
    tail -30 "$dir/configure.log" >&2
    die "cmake configure failed (log: $dir/configure.log)"
  fi
  say "configured in $(elapsed "$t0") s" >&2
  echo "$dir/compile_commands.json"
}

# ---------------------------------------------------------------------------
# Workers, run in parallel by xargs. Each job is a folder
# $work/<variant>/<N> holding: args (NUL-separated compiler + flags), file,
# dir, pch (our copy of the force-included header, or empty).
# ---------------------------------------------------------------------------

# Flags that do not act through the preprocessor (-std, -O, -W...): they
# enter the result key next to the preprocessed text.
nonpp_flags() {
  local skip_next=0 a
  for a in "$@"; do
    if ((skip_next)); then skip_next=0; continue; fi
    case $a in
      -isystem | -iquote | -idirafter | -include | -I | -D | -U) skip_next=1 ;;
      -I* | -D* | -U* | -isystem* | -iquote* | -idirafter*) ;;
      *) printf '%s ' "$a" ;;
    esac
  done
}

# Preprocessed text with the -D/-U given on the command line removed (their
# effect is in the text already), together with the "<command-line>" line
# markers (gcc emits a varying number of them), and the two LibTorch roots
# spelled the same, so that a TU whose CPU and CUDA inputs are identical gets
# one key.
normalize_pp() {
  awk '/^# [0-9]+ "/ { cmdline = ($3 == "\"<command-line>\"") }
       cmdline && (/^#(define|undef) / || /^# [0-9]+ "/) { next }
       { print }' | sed "s|$LT2_CACHE/roots/[a-z]*/|@LIBTORCH@/|g; s|$LT2_CACHE/pch/[a-z]*/|@PCH@/|g"
}

# preprocess_job JOB: writes JOB/torch (yes/no: does the TU itself reach a
# LibTorch header?) and JOB/key (the result-cache key: sha1 of compiler,
# flags, the PCH's key and the normalized preprocessed TU).
#
# Direct mode, as in ccache: running the same command over files with the
# same contents gives the same text, so a manifest of the files the last run
# read (gcc -MD), with their checksums, stands in for preprocessing again
# (~0.3 s instead of ~2 s per TU). Like ccache it does not notice a new
# header that would shadow one it read; --no-result-cache sidesteps it.
preprocess_job() {
  set -uo pipefail
  local job=$1 file dir pch pch_key="" manifest key rc=0
  local -a args
  mapfile -d '' -t args <"$job/args"
  file=$(<"$job/file") dir=$(<"$job/dir") pch=$(<"$job/pch")
  [[ -z "$pch" ]] || pch_key=$(<"$(dirname "$pch")/key")
  cd "$dir" || return 1
  manifest=$LT2_CACHE/results/manifests/$(printf '%s\0' "$LT2_CXX_ID" "$dir" "$file" "$pch_key" "${args[@]}" |
    sha1sum | cut -c1-40)
  if [[ "$LT2_RESULT_CACHE" == 1 && -f "$manifest/sums" ]] &&
    sha1sum --check --quiet --status "$manifest/sums" 2>/dev/null; then
    cp "$manifest/key" "$manifest/torch" "$job/"
    touch "$manifest/sums"
    return 0
  fi
  key=$({
    printf 'compiler: %s\nflags: %s\npch: %s\n' "$LT2_CXX_ID" "$(nonpp_flags "${args[@]:1}")" "$pch_key"
    "${args[@]}" -E -dD -MD -MF "$job/deps" "$file" 2>"$job/pp.err" | normalize_pp
  } | sha1sum | cut -d' ' -f1) || rc=$?
  if ((rc != 0)); then
    # The compile step shows the error; never reuse a result for this one.
    echo yes >"$job/torch"
    echo "pp-failed-$RANDOM$RANDOM" >"$job/key"
    return 0
  fi
  if grep -q "$LT2_CACHE/roots/" "$job/deps"; then echo yes; else echo no; fi >"$job/torch"
  echo "$key" >"$job/key"
  if [[ "$LT2_RESULT_CACHE" == 1 ]]; then
    # The depfile is "target: dep dep \" lines; one path per line, checksummed.
    mkdir -p "$manifest"
    cp "$job/key" "$job/torch" "$manifest/"
    sed '1s/^[^:]*://; s/\\$//' "$job/deps" | tr ' ' '\n' | sed '/^$/d' | sort -u |
      xargs -d '\n' sha1sum >"$manifest/sums.tmp" && mv "$manifest/sums.tmp" "$manifest/sums"
  fi
}

# compile_job JOB: -fsyntax-only, with the PCH header force-included where
# the project's build force-includes it. Writes JOB/log and JOB/status; a
# clean result is remembered in results/ok/<key>.
compile_job() {
  set -uo pipefail
  local job=$1 file dir pch t0 rc=0
  local -a args extra=()
  mapfile -d '' -t args <"$job/args"
  file=$(<"$job/file") dir=$(<"$job/dir") pch=$(<"$job/pch")
  [[ -n "$pch" ]] && extra=(-include "$pch")
  cd "$dir" || return 1
  t0=$(date +%s)
  "${args[@]}" -fsyntax-only "${extra[@]}" "$file" >"$job/log" 2>&1 || rc=$?
  # The project's code must compile without warnings against 2.6 too; those
  # from LibTorch's own headers (-isystem) never reach the log.
  if ((rc == 0)) && grep -q "^$LT2_REPO/[^:]*:[0-9]*:[0-9]*: warning:" "$job/log"; then rc=1; fi
  echo "$rc" >"$job/status"
  local variant=${job%/*}
  printf '  %-4s %-6s %4ss  %s\n' "${variant##*/}" "$( ((rc == 0)) && echo ok || echo FAILED)" \
    "$(($(date +%s) - t0))" "${file#"$LT2_REPO"/}"
  if ((rc == 0)) && [[ "$LT2_RESULT_CACHE" == 1 ]]; then
    touch "$LT2_CACHE/results/ok/$(<"$job/key")"
  fi
  return 0
}

# build_pch PCHDIR: precompiles PCHDIR/<header> the way CMake does (an empty
# TU compiled as c++-header with the header force-included) into
# <header>.gch, then records the flags it was built with.
build_pch() {
  set -uo pipefail
  local pchdir=$1 hdr t0 rc=0
  local -a args
  mapfile -d '' -t args <"$pchdir/build.args"
  hdr=$(<"$pchdir/header")
  t0=$(date +%s)
  rm -f "$hdr.gch" "$pchdir/gch.ok"
  : >"$pchdir/empty.cxx"
  "${args[@]}" -x c++-header -include "$hdr" "$pchdir/empty.cxx" -o "$hdr.gch.tmp" >"$pchdir/build.log" 2>&1 || rc=$?
  if ((rc == 0)); then
    mv "$hdr.gch.tmp" "$hdr.gch"
    cp "$pchdir/gch.want" "$pchdir/gch.ok"
    say "precompiled $(basename "$(dirname "$pchdir")") LibTorch header in $(($(date +%s) - t0)) s ($(du -h "$hdr.gch" | cut -f1))"
  else
    rm -f "$hdr.gch.tmp"
    say "could not precompile the $(basename "$(dirname "$pchdir")") header (the TUs read it as text instead):"
    head -20 "$pchdir/build.log"
  fi
}

export -f nonpp_flags normalize_pp preprocess_job compile_job build_pch say

# ---------------------------------------------------------------------------
# --compile
# ---------------------------------------------------------------------------
run_compile_check() {
  ensure_roots
  local version db work t0
  version=$(libtorch_version)
  db=$(compile_commands)
  say "translation units from $db"

  work=$(mktemp -d "$cache/work.XXXXXX")
  compile_work=$work # for the trap, which runs after this function's locals are gone
  trap 'rm -rf "$compile_work"' EXIT
  local rc=0
  select_tus "$db" "${build_dir:-$(dirname "$db")}" "$work" || rc=$?
  if ((rc == 3)); then
    die "compile_commands.json in $(dirname "$db") is stale (files were moved); re-run cmake there or omit --build-dir"
  elif ((rc != 0)); then
    die "could not read $db"
  fi
  local ntu
  ntu=$(wc -l <"$work/index")
  ((ntu > 0)) || die "no TU in $db links LibTorch (was the build configured with LibTorch found?)"

  # Compiler identity: part of every result key, with the version of the
  # key recipe below (bump it when normalize_pp or the keys change).
  local cxx
  cxx=$(head -z -n1 "$work/tu-0.args" | tr -d '\0')
  export LT2_CXX_ID="keys-v3 $(command -v "$cxx") $("$cxx" --version | head -1)"
  export LT2_CACHE=$cache LT2_REPO=$repo LT2_RESULT_CACHE=$result_cache
  local is_gcc=1
  "$cxx" -dM -E -x c++ /dev/null | grep -q __clang__ && is_gcc=0
  mkdir -p "$cache/results/ok" "$cache/results/manifests"
  # Results unused for two months are dropped.
  find "$cache/results/ok" -type f -mtime +60 -delete 2>/dev/null || true
  find "$cache/results/manifests" -name sums -mtime +60 -printf '%h\0' | xargs -0 -r rm -rf

  # The variants: extra flags in front of the project's own.
  local -a variants=(cpu)
  declare -A vflags
  vflags[cpu]=$(torch_flags "$cache/roots/cpu")
  find_cuda_headers
  if [[ -n "$cuda_inc" && -n "$nccl_inc" ]]; then
    variants+=(cuda)
    # ASR_WITH_CUDA=1 is what cmake/AsrDependencies.cmake adds for a CUDA
    # LibTorch; USE_C10D_NCCL comes from the package's torch_cuda target.
    # /usr/include is searched anyway and must not be repeated as -isystem
    # (that breaks libstdc++'s #include_next).
    local -a cuda_dirs=()
    for dir in "$cuda_inc" "$nccl_inc"; do
      [[ "$dir" == /usr/include || " ${cuda_dirs[*]-} " == *" $dir "* ]] || cuda_dirs+=("$dir")
    done
    vflags[cuda]=$(
      torch_flags "$cache/roots/cuda"
      echo "-DASR_WITH_CUDA=1"
      for dir in "${cuda_dirs[@]}"; do printf -- '-isystem\n%s\n' "$dir"; done
    )
    say "CUDA variant: cuda_runtime.h from $cuda_inc, nccl.h from $nccl_inc"
  else
    warn "no cuda_runtime.h/nccl.h (set CUDA_HOME/NCCL_HOME): the CUDA variant is skipped"
  fi
  for v in "${variants[@]}"; do
    say "$v flags: $(echo ${vflags[$v]})"
  done

  # Lay out one job per (variant, TU) and one PCH folder per (variant, header).
  local n file dir pch v
  declare -A pch_of # "variant|original header" -> our pch dir
  while IFS=$'\t' read -r n file dir pch; do
    for v in "${variants[@]}"; do
      local job=$work/$v/$n
      mkdir -p "$job"
      {
        head -z -n1 "$work/tu-$n.args"
        printf '%s\0' ${vflags[$v]}
        tail -z -n+2 "$work/tu-$n.args"
      } >"$job/args"
      printf '%s' "$file" >"$job/file"
      printf '%s' "$dir" >"$job/dir"
      local ours=""
      if [[ -n "$pch" ]]; then
        [[ -f "$pch" ]] || die "$pch (the precompiled header's source) is missing: configure $(dirname "$db") again"
        local pdir=${pch_of[$v|$pch]:-}
        if [[ -z "$pdir" ]]; then
          # Our copy of CMake's wrapper header (it includes the project's
          # cmake/torch_pch.h by absolute path); its .gch sits next to it.
          pdir=$cache/pch/$v/$(printf '%s' "$pch" | sha1sum | cut -c1-12)
          mkdir -p "$pdir"
          cmp -s "$pch" "$pdir/$(basename "$pch")" || { cp "$pch" "$pdir/"; rm -f "$pdir/gch.ok"; }
          printf '%s' "$pdir/$(basename "$pch")" >"$pdir/header"
          cp "$job/args" "$pdir/build.args" # built with the flags of its first user
          pch_of[$v|$pch]=$pdir
        fi
        ours=$(<"$pdir/header")
      fi
      printf '%s' "$ours" >"$job/pch"
    done
  done <"$work/index"

  # The PCH keys: sha1 of its normalized preprocessed text (dedupes across
  # variants like a TU) and, for the .gch itself, of the exact build flags.
  local pdir
  for pdir in "${pch_of[@]}"; do
    local -a pargs
    mapfile -d '' -t pargs <"$pdir/build.args"
    : >"$pdir/empty.cxx"
    { printf 'compiler: %s\nflags: %s\n' "$LT2_CXX_ID" "$(nonpp_flags "${pargs[@]:1}")"
      "${pargs[@]}" -E -dD -include "$(<"$pdir/header")" "$pdir/empty.cxx" 2>"$pdir/pp.err" | normalize_pp
    } | sha1sum | cut -d' ' -f1 >"$pdir/key" || { cat "$pdir/pp.err" >&2; die "cannot preprocess $(<"$pdir/header")"; }
    { cat "$pdir/key" "$pdir/build.args"; } | sha1sum | cut -d' ' -f1 >"$pdir/gch.want"
    # A .gch from other inputs must never sit next to the header: GCC would
    # take it without checking that the headers behind it are unchanged.
    if ! cmp -s "$pdir/gch.want" "$pdir/gch.ok" 2>/dev/null; then rm -f "$(<"$pdir/header").gch" "$pdir/gch.ok"; fi
  done

  # Phase 1: preprocess every job (seconds each): is it a LibTorch TU, and
  # is its exact input known to compile already?
  t0=$(date +%s)
  say "preprocessing $ntu TUs x ${#variants[@]} variants with $jobs jobs"
  find "$work" -mindepth 2 -maxdepth 2 -type d -path "$work/*/*" -printf '%p\0' |
    xargs -0 -P "$jobs" -n 1 bash -c 'preprocess_job "$1"' _
  say "preprocessed in $(elapsed "$t0") s"

  # Phase 2: plan. CPU first; a CUDA job whose key equals a CPU job's shares
  # its result (identical preprocessed input, identical flags).
  declare -A first_with_key state
  local -a todo=()
  declare -A pch_users
  for v in "${variants[@]}"; do
    while IFS=$'\t' read -r n file dir pch; do
      local job=$work/$v/$n key
      key=$(<"$job/key")
      if [[ $(<"$job/torch") == no ]]; then
        state[$job]=plain
      elif ((result_cache)) && [[ -f "$cache/results/ok/$key" ]]; then
        state[$job]=cached
        touch "$cache/results/ok/$key"
      elif [[ -n "${first_with_key[$key]:-}" ]]; then
        state[$job]="same:${first_with_key[$key]}"
      else
        state[$job]=compile
        first_with_key[$key]=$job
        todo+=("$job")
        if [[ -s "$job/pch" ]]; then
          pdir=$(dirname "$(<"$job/pch")")
          pch_users[$pdir]=$((${pch_users[$pdir]:-0} + 1))
        fi
      fi
    done <"$work/index"
  done

  # Phase 3: a precompiled header pays off from about 4 TUs (it takes as long
  # to build as 3-4 TUs take to parse the LibTorch headers as text).
  local -a pch_todo=()
  if ((is_gcc)); then
    for pdir in "${!pch_users[@]}"; do
      if [[ ! -f "$pdir/gch.ok" ]] && ((pch_users[$pdir] >= 4)); then pch_todo+=("$pdir"); fi
    done
  fi
  if ((${#pch_todo[@]})); then
    t0=$(date +%s)
    say "precompiling the LibTorch header for ${#pch_todo[@]} variant(s)"
    printf '%s\0' "${pch_todo[@]}" | xargs -0 -P "$jobs" -n 1 bash -c 'build_pch "$1"' _
  fi

  # Phase 4: compile what is new.
  if ((${#todo[@]})); then
    t0=$(date +%s)
    say "compiling ${#todo[@]} TUs (-fsyntax-only) with $jobs jobs"
    printf '%s\0' "${todo[@]}" | xargs -0 -P "$jobs" -n 1 bash -c 'compile_job "$1"' _
    say "compiled in $(elapsed "$t0") s"
  else
    say "nothing to compile: every LibTorch TU's preprocessed input passed before"
  fi

  # Phase 5: report.
  local summary=() failed=0
  for v in "${variants[@]}"; do
    local total=0 ok=0 cached=0 same=0 plain=0 fails=()
    while IFS=$'\t' read -r n file dir pch; do
      local job=$work/$v/$n s=${state[$work/$v/$n]} status_job
      case $s in
        plain) plain=$((plain + 1)); continue ;;
        cached) total=$((total + 1)); ok=$((ok + 1)); cached=$((cached + 1)); continue ;;
        same:*) status_job=${s#same:}; same=$((same + 1)) ;;
        *) status_job=$job ;;
      esac
      total=$((total + 1))
      if [[ "$(cat "$status_job/status" 2>/dev/null)" == 0 ]]; then
        ok=$((ok + 1))
      else
        fails+=("$job:$status_job")
      fi
    done <"$work/index"
    say "$v: $ok/$total LibTorch TUs ok ($cached unchanged since a passing run, $same identical to an earlier variant after preprocessing; $plain TUs with LibTorch flags include no LibTorch header)"
    local f
    for f in "${fails[@]}"; do
      local job=${f%%:*} status_job=${f#*:}
      failed=$((failed + 1))
      printf '\n==== %s: %s failed to compile against LibTorch %s%s ====\n' "$v" \
        "$(sed "s|^$repo/||" "$job/file")" "$version" \
        "$([[ "$job" != "$status_job" ]] && echo " (same input as ${status_job#"$work"/})")"
      grep -v '^In file included from\|^ *from ' "$status_job/log" | head -30
    done
    summary+=("$v $ok/$total TUs ok")
  done
  ((${#variants[@]} == 2)) || summary+=("cuda skipped (no CUDA headers)")
  echo
  echo "libtorch2 compile check: $(
    IFS=,
    echo "${summary[*]}" | sed 's/,/, /g'
  ) (LibTorch $version, $(elapsed) s)"
  ((failed == 0))
}

# ---------------------------------------------------------------------------
# --full: a Debian trixie root (debootstrap, cached in $cache/full/trixie)
# that builds and tests the checkout against LibTorch 2.6, then links asr_ddp
# against the CUDA LibTorch.
#
# Inside the root:  /src         the checkout, bind-mounted read-only
#                   /shared      ../shared next to the checkout, read-only (if any)
#                   /build/cpu   CPU build + ctest (kept: re-runs are incremental)
#                   /build/cuda  CUDA build of asr_ddp
#                   /opt/libtorch-cuda  dpkg -x of the CUDA LibTorch and the
#                                packages apt cannot install next to the CPU one
# ---------------------------------------------------------------------------
full_dir=$cache/full
troot=$full_dir/trixie
logs=$full_dir/logs

# The project's build dependencies: scripts/install-deps.sh's list (trixie
# uses the same names for all of them), plus what the test suite installs or
# calls on its own (Slurm and munge for tests/cli/slurm_*.sh, procps, file).
full_packages() {
  sed -n '/^packages=(/,/^)/p' "$repo/scripts/install-deps.sh" | sed '1d;$d' | tr -s ' \t' '\n' | sed '/^$/d'
  printf '%s\n' slurmctld slurmd slurm-client munge procps file
}

# Mount points at or below the trixie root, deepest first.
mounts_under_root() {
  awk -v r="$troot" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Processes whose root directory is the trixie root (daemons a test left
# behind, say): ended by process id, TERM first.
end_root_processes() {
  local pid pids=()
  for pid in /proc/[0-9]*; do
    [[ "$(readlink "$pid/root" 2>/dev/null)" == "$troot" ]] && pids+=("${pid#/proc/}")
  done
  ((${#pids[@]})) || return 0
  say "ending ${#pids[@]} process(es) left in the trixie root: ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  sleep 2
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

unmount_all() {
  local m
  end_root_processes
  for m in $(mounts_under_root); do
    umount "$m" 2>/dev/null || umount -l "$m" || warn "could not unmount $m"
  done
}

# mount_at DIR ARGS...: mounts unless DIR is a mount point already.
mount_at() {
  local dir=$1
  shift
  mkdir -p "$dir"
  mountpoint -q "$dir" || mount "$@" "$dir"
}

mount_all() {
  trap unmount_all EXIT
  trap 'exit 130' INT TERM
  # Name resolution as on the host: the tests connect to this host by its
  # name (the rendezvous store of a single-node run), which only the host's
  # /etc/hosts may know.
  cp /etc/hosts "$troot/etc/hosts"
  cp /etc/resolv.conf "$troot/etc/resolv.conf" 2>/dev/null || true
  hostname >"$troot/etc/hostname"
  mount_at "$troot/proc" -t proc proc
  # /sys with its submounts (slurmd wants /sys/fs/cgroup); rslave so that
  # unmounting them here can never propagate back to the host's.
  if ! mountpoint -q "$troot/sys"; then
    mount_at "$troot/sys" --rbind /sys
    mount --make-rslave "$troot/sys"
  fi
  mount_at "$troot/dev" --bind /dev
  mount_at "$troot/dev/pts" --bind /dev/pts
  mount_at "$troot/dev/shm" -t tmpfs tmpfs # OpenMPI's shared-memory transport
  if ! mountpoint -q "$troot/src"; then
    mount_at "$troot/src" --bind "$repo"
    mount -o remount,bind,ro "$troot/src"
  fi
  if [[ -d "$repo/../shared" ]] && ! mountpoint -q "$troot/shared"; then
    mount_at "$troot/shared" --bind "$(cd "$repo/../shared" && pwd)"
    mount -o remount,bind,ro "$troot/shared"
  fi
}

# in_root CMD...: runs CMD in the trixie root with a clean environment.
in_root() {
  chroot "$troot" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# logged NAME CMD...: runs CMD with its output in $logs/NAME.log. CMD runs
# in the background so that a signal reaches our trap at once (bash defers
# traps while a foreground child runs); the trap ends what runs in the root.
logged() {
  local name=$1 rc=0
  shift
  "$@" >"$logs/$name.log" 2>&1 &
  wait $! || rc=$?
  return "$rc"
}

ensure_debootstrap() {
  local dir=$full_dir/debootstrap conf rc=0
  if [[ -f "$dir/.asr-stamp" ]]; then return 0; fi
  lock_apt
  conf=$(trixie_apt_conf) || rc=$?
  ((rc == 3)) && skip "the Debian mirror $mirror is unreachable and no trixie root is cached"
  ((rc == 0)) || exit 1
  # trixie's own debootstrap, unpacked rather than installed on this system.
  rm -rf "$dir" && mkdir -p "$dir/deb"
  ((EUID == 0)) && chown _apt:root "$dir/deb" 2>/dev/null || true
  (cd "$dir/deb" && APT_CONFIG=$conf apt-get -q download debootstrap) | sed 's/^/  apt: /'
  dpkg -x "$dir"/deb/debootstrap_*.deb "$dir/root"
  touch "$dir/.asr-stamp"
}

ensure_trixie_root() {
  if [[ -f "$troot/.asr-debootstrap-ok" ]]; then
    say "trixie root: $troot (cached)"
    return 0
  fi
  ensure_debootstrap
  local t0 ds=$full_dir/debootstrap/root
  t0=$(date +%s)
  if [[ -e "$troot" ]]; then
    # A half-made root from an interrupted run. Nothing may be mounted in it
    # (the checkout is bind-mounted there during a run!) before it goes.
    unmount_all
    [[ -z "$(mounts_under_root)" ]] || die "$troot still has mounts; not deleting it"
    rm -rf --one-file-system "$troot"
  fi
  mkdir -p "$full_dir" "$logs"
  say "debootstrap $suite into $troot (log: $logs/debootstrap.log)"
  if ! DEBOOTSTRAP_DIR=$ds/usr/share/debootstrap "$ds/usr/sbin/debootstrap" --variant=minbase \
    --components=main,contrib,non-free --keyring="$(cat "$apt_dir/trixie/keyring" 2>/dev/null || echo "$keyring")" \
    "$suite" "$troot" "$mirror" >"$logs/debootstrap.log" 2>&1; then
    tail -20 "$logs/debootstrap.log"
    die "debootstrap failed (log: $logs/debootstrap.log)"
  fi
  touch "$troot/.asr-debootstrap-ok"
  say "debootstrap took $(elapsed "$t0") s"
}

# ensure_root_packages: installs the build dependencies in the root; the
# stamp names the package list, so a changed install-deps.sh installs again.
ensure_root_packages() {
  local -a pkgs
  mapfile -t pkgs < <(full_packages)
  local stamp t0
  stamp=$troot/.asr-packages-$(printf '%s\n' "${pkgs[@]}" | sha1sum | cut -c1-12)
  if [[ -f "$stamp" ]]; then
    say "build dependencies already installed in the root (${#pkgs[@]} packages)"
    return 0
  fi
  t0=$(date +%s)
  printf 'deb %s %s main contrib non-free\n' "$mirror" "$suite" >"$troot/etc/apt/sources.list"
  # Package scripts must not start daemons (munge, slurm) in the root.
  printf '#!/bin/sh\nexit 101\n' >"$troot/usr/sbin/policy-rc.d"
  chmod 755 "$troot/usr/sbin/policy-rc.d"
  say "installing ${#pkgs[@]} packages in the root (log: $logs/install-deps.log)"
  if ! logged install-deps in_root bash -c 'apt-get -q update && apt-get -q install -y --no-install-recommends "$@"' _ "${pkgs[@]}"; then
    tail -30 "$logs/install-deps.log"
    die "installing the build dependencies in the root failed"
  fi
  rm -f "$troot"/.asr-packages-*
  touch "$stamp"
  say "installed in $(elapsed "$t0") s: $(in_root dpkg-query -W -f='${Package} ${Version}\n' libtorch-dev cmake g++ | tr '\n' ',' | sed 's/,$//; s/,/, /g')"
}

# ctest_summary LOG: "P passed, F failed, S skipped of T" from ctest's output.
ctest_summary() {
  local log=$1 total failed skipped
  total=$(sed -n 's/.*tests passed, [0-9]* tests\{0,1\} failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of.*/\1/p' "$log" | tail -1)
  skipped=$(grep -c '(Skipped)$' "$log" || true)
  [[ -n "$total" ]] || { echo "no result"; return; }
  echo "$((total - failed - skipped)) passed, $failed failed, $skipped skipped of $total"
}

full_cpu_build_and_test() {
  local t0
  t0=$(date +%s)
  # A build dir made from another checkout would see this one's older file
  # times as "up to date" and keep stale objects: it starts over instead
  # (ccache in the root keeps that cheap).
  if [[ "$(cat "$troot/build/cpu/.asr-source" 2>/dev/null)" != "$repo" ]]; then
    rm -rf --one-file-system "$troot/build/cpu"
    mkdir -p "$troot/build/cpu" && printf '%s' "$repo" >"$troot/build/cpu/.asr-source"
  fi
  say "CPU build against LibTorch 2.6 in /build/cpu (log: $logs/build-cpu.log)"
  if ! logged build-cpu in_root bash -c "
      set -e
      [[ -f /build/cpu/CMakeCache.txt ]] || cmake -S /src -B /build/cpu -G Ninja -DCMAKE_BUILD_TYPE=Release
      cmake --build /build/cpu -j $jobs -- -k 0"; then
    # -k 0: every TU that can build did, so the log has all the errors.
    cpu_build="FAILED after $(elapsed "$t0") s"
    grep -E 'error:|FAILED:' "$logs/build-cpu.log" | head -40
    say "the CPU build failed, so the tests were not run"
    return 1
  fi
  cpu_build="ok in $(elapsed "$t0") s"
  say "CPU build $cpu_build"

  t0=$(date +%s)
  say "running the test suite: ctest -j $jobs (log: $logs/ctest-cpu.log)"
  local rc=0
  # All but the compile check: inside the root, LibTorch 2.6 is the system's
  # and this build just compiled every file against it.
  logged ctest-cpu in_root bash -c "cd /build/cpu && ctest -j $jobs --output-on-failure -E '^cli\.libtorch2_compile\$'" || rc=$?
  ctest_result="$(ctest_summary "$logs/ctest-cpu.log") in $(elapsed "$t0") s"
  say "ctest: $ctest_result"
  sed -n '/The following tests did not run:/,$p' "$logs/ctest-cpu.log"
  return "$rc"
}

# A checkpoint written under one LibTorch resumes under the other: this
# machine's build (1.13) trains 8 steps of configs/tiny.toml and the 2.6
# build in the root continues it to step 12, and the other way round. Each
# continuation is compared with the writer continuing its own checkpoint
# (the same config and seed continue the same way; only the library
# differs). Both sides see the run folders at the same path, /tmp/asr-xver.
full_cross_resume() {
  local hb=${build_dir:-$repo/build} x=/tmp/asr-xver t0 rc=0
  if [[ ! -x $hb/asr_ddp || ! -x $hb/asr_preprocess ]]; then
    cross_resume="not run (no build of this machine's LibTorch in $hb; pass --build-dir)"
    return 0
  fi
  t0=$(date +%s)
  say "checkpoints across versions: $hb (LibTorch 1.13) <-> /build/cpu (2.6) (log: $logs/cross-resume.log)"
  rm -rf "$x" && mkdir -p "$x"
  mount_at "$troot$x" --bind "$x"
  logged cross-resume cross_resume_runs "$hb" "$x" || rc=$?
  grep '^cross-resume:' "$logs/cross-resume.log" | sed 's/^/  /'
  if ((rc == 0)); then
    cross_resume="ok in $(elapsed "$t0") s ($(grep -c '^cross-resume: .* resumed' "$logs/cross-resume.log") directions)"
  else
    cross_resume="FAILED (log: $logs/cross-resume.log)"
    tail -20 "$logs/cross-resume.log"
  fi
  umount "$troot$x" 2>/dev/null || true
  rm -rf "$x"
  return "$rc"
}

cross_resume_runs() { # HOST_BUILD DIR
  local hb=$1 x=$2
  "$repo/scripts/make-synthetic-ljspeech" --output "$x/corpus" --count 24 --jobs "$jobs" --seed 7 &&
    "$hb/asr_preprocess" --input "$x/corpus" --output "$x/data" --val 4 --test 2 --vocab-size 48 --shards 2 &&
    cp "$repo/configs/tiny.toml" "$x/tiny.toml" || return 1
  local -a args=(--config "$x/tiny.toml" --data "$x/data" --set train.log_every=1 --set log.progress=plain
    --set schedule.total_steps=40 --set eval.every=0 --set checkpoint.every=4)
  old() { env OMP_NUM_THREADS=1 "$hb/asr_ddp" "${args[@]}" "$@"; }
  new() { in_root env OMP_NUM_THREADS=1 /build/cpu/asr_ddp "${args[@]}" "$@"; }
  local writer reader
  for writer in old new; do
    reader=$([[ $writer == old ]] && echo new || echo old)
    "$writer" --run-dir "$x/$writer" --max-steps 8 &&
      cp -a "$x/$writer" "$x/$writer-by-$reader" &&
      "$writer" --run-dir "$x/$writer" --max-steps 12 --resume auto &&
      "$reader" --run-dir "$x/$writer-by-$reader" --max-steps 12 --resume auto || return 1
    python3 - "$x/$writer" "$x/$writer-by-$reader" "$writer" "$reader" <<'PY'
import json, sys
names = {"old": "1.13", "new": "2.6"}
def after_resume(run):
    return [r["loss"] for r in map(json.loads, open(run + "/metrics.jsonl")) if "loss" in r and r["step"] > 8]
a, b = after_resume(sys.argv[1]), after_resume(sys.argv[2])
if len(a) != 4 or len(b) != 4:
    sys.exit(f"cross-resume: expected 4 steps after the resume, got {len(a)} and {len(b)}")
worst = max(abs(p - q) / abs(p) for p, q in zip(a, b))
print(f"cross-resume: written by {names[sys.argv[3]]}, resumed by {names[sys.argv[4]]} at step 8: "
      f"steps 9-12 within {worst:.1e} (relative) of {names[sys.argv[3]]} continuing itself")
sys.exit(0 if worst < 1e-3 else 1)
PY
    [[ $? == 0 ]] || return 1
  done
}

# The CUDA LibTorch cannot be installed next to the CPU one (the -dev and
# library packages conflict), and nvidia-cudnn's maintainer script downloads
# cuDNN from NVIDIA. So: apt installs what it can (the CUDA toolkit, for nvcc
# and the headers, and NCCL), and everything else libtorch-cuda-dev still
# needs is unpacked with dpkg -x into /opt/libtorch-cuda. Nothing there has
# to run; it only has to link.
full_cuda_link() {
  local t0 opt=$troot/opt/libtorch-cuda
  t0=$(date +%s)
  if [[ ! -f "$opt/.asr-stamp" ]]; then
    say "installing the CUDA toolkit and NCCL in the root (log: $logs/install-cuda.log)"
    if ! logged install-cuda in_root apt-get -q install -y --no-install-recommends nvidia-cuda-toolkit libnccl-dev; then
      tail -30 "$logs/install-cuda.log"
      cuda_link="FAILED: apt could not install nvidia-cuda-toolkit libnccl-dev"
      return 1
    fi
    # What libtorch-cuda-dev would add on top: apt's own plan, "Inst" lines.
    local -a extra
    mapfile -t extra < <(in_root apt-get -s install libtorch-cuda-dev | awk '$1 == "Inst" { print $2 }')
    say "unpacking ${#extra[@]} packages into /opt/libtorch-cuda: ${extra[*]}"
    rm -rf "$opt" && mkdir -p "$opt/debs"
    if ! logged unpack-cuda in_root bash -c 'cd /opt/libtorch-cuda/debs && apt-get -q download "$@" &&
         for deb in *.deb; do dpkg -x "$deb" /opt/libtorch-cuda; done' _ "${extra[@]}"; then
      tail -20 "$logs/unpack-cuda.log"
      cuda_link="FAILED: could not download/unpack the CUDA LibTorch"
      return 1
    fi
    rm -rf "$opt/debs"
    touch "$opt/.asr-stamp"
  fi

  # CMAKE_PREFIX_PATH puts the unpacked tree before /usr for every
  # find_package/find_library: with Torch_DIR alone, TorchConfig.cmake's
  # find_package(Caffe2) and find_library(c10) pick the CPU LibTorch in /usr.
  # -rpath-link lets ld follow the unpacked libraries' own dependencies
  # (libgloo_cuda.so.0 sits in usr/lib, the rest in usr/lib/<multiarch>).
  # libcudnn.so.9 exists nowhere in Debian (nvidia-cudnn fetches it when
  # installed), so symbols unresolved *inside* shared libraries are let
  # through; every symbol asr_ddp's own objects use must still resolve.
  local multiarch lib libs args
  multiarch=$(in_root dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
  lib=/opt/libtorch-cuda/usr/lib/$multiarch
  libs=$lib:/opt/libtorch-cuda/usr/lib
  args="-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF -DASR_BUILD_BENCH=OFF \
    -DCMAKE_PREFIX_PATH=/opt/libtorch-cuda/usr -DTorch_DIR=$lib/cmake/Torch \
    -DCMAKE_EXE_LINKER_FLAGS='-Wl,-rpath-link,$libs -Wl,--unresolved-symbols=ignore-in-shared-libs'"
  # A build dir configured with other arguments starts over (ccache in the
  # root makes that cheap); reconfiguring in place would keep stale find
  # results, such as the CPU LibTorch's.
  if [[ "$(cat "$troot/build/cuda/.asr-configure-args" 2>/dev/null)" != "$repo|$args" ]]; then
    rm -rf --one-file-system "$troot/build/cuda"
  fi
  say "CUDA build of asr_ddp in /build/cuda (log: $logs/build-cuda.log)"
  if ! logged build-cuda in_root bash -c "
      set -e
      if [[ ! -f /build/cuda/CMakeCache.txt ]]; then
        cmake -S /src -B /build/cuda $args
        printf '%s' \"\$1\" >/build/cuda/.asr-configure-args
      fi
      grep -q 'ASR_WITH_CUDA=1' /build/cuda/build.ninja || { echo 'error: LibTorch found without CUDA'; exit 1; }
      cmake --build /build/cuda --target asr_ddp -j $jobs" _ "$repo|$args"; then
    cuda_link="FAILED after $(elapsed "$t0") s"
    grep -E 'error|Error|FAILED|not found' "$logs/build-cuda.log" | grep -v '^\[' | head -40
    return 1
  fi
  local needed missing
  needed=$(in_root readelf -d /build/cuda/asr_ddp | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' |
    grep -E 'torch|c10|cuda|nccl' | tr '\n' ' ' | sed 's/ $//')
  # What the dynamic loader would not find, with the unpacked tree on its path.
  missing=$(in_root env LD_LIBRARY_PATH="$libs" ldd /build/cuda/asr_ddp | awk '/not found/ { print $1 }' |
    sort -u | tr '\n' ' ' | sed 's/ $//')
  cuda_link="ok in $(elapsed "$t0") s (links ${needed}; unresolvable: ${missing:-none})"
  say "CUDA link $cuda_link"
}

run_full_check() {
  ((EUID == 0)) || die "--full needs root (debootstrap, chroot, mounts)"
  mkdir -p "$full_dir" "$logs"
  ensure_trixie_root
  mount_all
  ensure_root_packages
  local failed=0
  cpu_build="not run" ctest_result="not run" cuda_link="not run"
  cross_resume="not run"
  full_cpu_build_and_test || failed=1
  if [[ $cpu_build == ok* ]]; then full_cross_resume || failed=1; fi
  full_cuda_link || failed=1
  echo
  echo "libtorch2 full check: build ${cpu_build}; ctest ${ctest_result}; checkpoints 1.13 <-> 2.6 ${cross_resume}; CUDA link of asr_ddp ${cuda_link} (LibTorch $(in_root dpkg-query -W -f='${Version}' libtorch-dev), $(elapsed) s)"
  return "$failed"
}

case $mode in
  compile) run_compile_check ;;
  full) run_full_check ;;
esac
