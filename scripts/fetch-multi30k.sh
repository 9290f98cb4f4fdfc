#!/usr/bin/env bash
# Fetch the Multi30k task-1 raw corpus (gzipped, one sentence per line) into DEST.
#
#   scripts/fetch-multi30k.sh [--all] [DEST]          (DEST defaults to data/multi30k)
#
# Files: train, val and test_2016_flickr in en, de, fr, cs. --all adds test_2017_flickr
# and test_2017_mscoco (en, de, fr; no cs exists) and test_2018_flickr (en, de, fr, cs).
#
# Source: the folder named by $MULTI30K_DIR when it holds the file (no network needed),
# otherwise https://github.com/multi30k/dataset/raw/master/data/task1/raw/.
# Every core file is checked against the sha256 below; a mismatch is an error naming
# the file, and the bad copy is removed. Files already present with the right checksum
# are skipped, so running it twice is harmless.
set -euo pipefail

readonly BASE_URL="https://github.com/multi30k/dataset/raw/master/data/task1/raw"

# sha256 of the core files, computed from a verified copy of the upstream files.
declare -A SHA256=(
  [train.en.gz]=d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f
  [train.de.gz]=726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6
  [train.fr.gz]=622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c
  [train.cs.gz]=a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077
  [val.en.gz]=14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28
  [val.de.gz]=f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a
  [val.fr.gz]=ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9
  [val.cs.gz]=b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc
  [test_2016_flickr.en.gz]=611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9
  [test_2016_flickr.de.gz]=9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8
  [test_2016_flickr.fr.gz]=6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90
  [test_2016_flickr.cs.gz]=200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1
)
readonly CORE=(
  train.{en,de,fr,cs}.gz
  val.{en,de,fr,cs}.gz
  test_2016_flickr.{en,de,fr,cs}.gz
)
# The --all extras have no checksum here (no verified copy was at hand when this was
# written): they are only checked to be intact gzip files.
readonly EXTRAS=(
  test_2017_flickr.{en,de,fr}.gz
  test_2017_mscoco.{en,de,fr}.gz
  test_2018_flickr.{en,de,fr,cs}.gz
)

die() {
  echo "fetch-multi30k: error: $*" >&2
  exit 1
}

usage() {
  local code=${1:-0}
  if ((code)); then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  else
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  fi
  exit "$code"
}

sha256_of() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

# True when $2 (a path) is a good copy of file $1: right checksum, or for files
# without a known checksum, a gzip stream that decompresses cleanly.
is_good() {
  local name=$1 path=$2
  if [[ -n "${SHA256[$name]:-}" ]]; then
    [[ "$(sha256_of "$path")" == "${SHA256[$name]}" ]]
  else
    gzip -t "$path" 2>/dev/null
  fi
}

# Puts file $1 into $2 (a temporary path); prints where it came from.
obtain() {
  local name=$1 out=$2
  if [[ -n "${MULTI30K_DIR:-}" && -f "$MULTI30K_DIR/$name" ]]; then
    cp "$MULTI30K_DIR/$name" "$out" || die "$name: cannot copy from $MULTI30K_DIR"
    echo "$MULTI30K_DIR/$name"
    return
  fi
  local url="$BASE_URL/$name" tried=""
  [[ -n "${MULTI30K_DIR:-}" ]] && tried="not in MULTI30K_DIR=$MULTI30K_DIR; "
  if command -v curl >/dev/null; then
    curl -fsSL --retry 2 --connect-timeout 20 -o "$out" "$url" 2>/dev/null ||
      die "$name: ${tried}download failed from $url (set MULTI30K_DIR to a folder holding the files)"
  elif command -v wget >/dev/null; then
    wget -q -O "$out" "$url" ||
      die "$name: ${tried}download failed from $url (set MULTI30K_DIR to a folder holding the files)"
  else
    die "$name: ${tried}neither curl nor wget is installed (set MULTI30K_DIR to a folder holding the files)"
  fi
  echo "$url"
}

# Fetches one file into DEST unless a good copy is already there.
fetch() {
  local name=$1 dest=$2
  local target="$dest/$name"
  if [[ -f "$target" ]]; then
    if is_good "$name" "$target"; then
      echo "  ok       $target"
      return
    fi
    echo "  replace  $target (checksum mismatch)"
    rm -f "$target"
  fi
  partial="$dest/.$name.part"
  local source
  source=$(obtain "$name" "$partial")
  if ! is_good "$name" "$partial"; then
    rm -f "$partial"
    if [[ -n "${SHA256[$name]:-}" ]]; then
      die "$name from $source: sha256 mismatch (expected ${SHA256[$name]}); corrupted or changed upstream, not installed"
    fi
    die "$name from $source: not a valid gzip file; not installed"
  fi
  chmod 0644 "$partial"
  mv "$partial" "$target"
  partial=""
  echo "  fetched  $target  <- $source"
}

main() {
  local all=0 dest="data/multi30k"
  while (($#)); do
    case "$1" in
      --all) all=1 ;;
      -h | --help) usage 0 ;;
      -*) echo "fetch-multi30k: unknown option $1" >&2; usage 2 ;;
      *) dest=$1 ;;
    esac
    shift
  done
  mkdir -p "$dest" || die "cannot create $dest"
  partial=""
  trap '[[ -n "$partial" ]] && rm -f "$partial"' EXIT
  local files=("${CORE[@]}")
  ((all)) && files+=("${EXTRAS[@]}")
  echo "Multi30k task 1 -> $dest"
  for name in "${files[@]}"; do
    fetch "$name" "$dest"
  done
  echo "done: ${#files[@]} files in $dest"
}

main "$@"
