#!/usr/bin/env bash
# Paths in config files: a saved config.ini re-runs the same folder from any working directory, even
# when a path holds '#' (written quoted; unquoted, '#' starts a comment) or spaces; relative paths in
# a hand-written config are relative to the config file's folder, not to the working directory.
# Usage: config_paths.sh /path/to/idprune /path/to/source_root
# shellcheck source=lib/common.sh
source "$(dirname "$0")/lib/common.sh"

# Inputs under names with '#' and a space, reached by a relative path from the working directory.
mkdir -p "$work/in#puts/my data" "$work/cwd" "$work/elsewhere"
cp "$root/data/models/fashion-mnist-small.safetensors" "$work/in#puts/model#1.safetensors"
cp "$root/data/fashion-mnist-small/"*.gz "$work/in#puts/my data/"
common=(--strategy greedy --rule eps --compression-size 300 --test-size 300 --seed 7 --threads 1 --engine lapack)
(cd "$work/cwd" && "$idprune" sweep --model "../in#puts/model#1.safetensors" --data "../in#puts/my data" "${common[@]}" \
  --grid 0.01,0.1 --out "../res#1") >"$work/first.log" 2>&1 || { cat "$work/first.log"; fail "sweep failed"; }
grep -q '^model = "' "$work/res#1/config.ini" || { cat "$work/res#1/config.ini"; fail "a path with '#' is not quoted"; }

# From another working directory: the same folder, the same inputs, the finished points kept.
(cd "$work/elsewhere" && "$idprune" sweep --config "../res#1/config.ini" --resume) >"$work/again.log" 2>&1 ||
  { cat "$work/again.log"; fail "re-running from config.ini elsewhere failed"; }
grep -q "(2 already in" "$work/again.log" || { cat "$work/again.log"; fail "re-running did not find the folder's rows"; }
[ -z "$(find "$work/elsewhere" -mindepth 1)" ] || fail "re-running created files in the working directory"
[ "$(wc -l <"$work/res#1/results.jsonl")" -eq 2 ] || fail "rows after the re-run"

# A hand-written config with paths relative to its own folder, run from elsewhere.
mkdir -p "$work/configs"
cat >"$work/configs/run.ini" <<EOF
# relative to this file's folder
model = ../in#puts/model#1.safetensors   # unquoted: this '#' ends the value (a comment)
data = "../in#puts/my data"
out = "../res#2"
grid = 0.01
EOF
# The unquoted '#' cuts the model path: refused, naming the file that does not exist.
if (cd "$work/elsewhere" && "$idprune" sweep --config ../configs/run.ini "${common[@]}") >"$work/cut.log" 2>&1; then
  fail "an unquoted '#' did not start a comment"
fi
grep -qF "../in: " "$work/cut.log" || { cat "$work/cut.log"; fail "unclear error for the cut path"; }
[ ! -e "$work/res#2" ] || fail "the refused run left its output folder"
sed -i 's|^model = .*|model = "../in#puts/model#1.safetensors"|' "$work/configs/run.ini"
(cd "$work/elsewhere" && "$idprune" sweep --config ../configs/run.ini "${common[@]}") >"$work/hand.log" 2>&1 ||
  { cat "$work/hand.log"; fail "a config with paths relative to its folder failed"; }
[ -s "$work/res#2/results.csv" ] || fail "the config's relative --out was not taken relative to its folder"

# Quoted values with a comment after them; an unterminated quote is an error naming the line.
cat >"$work/configs/quoted.ini" <<'EOF'
layers = "all"   # a comment after a quoted value
grid = "0.5"
EOF
"$idprune" sweep --config "$work/configs/quoted.ini" --model "$work/in#puts/model#1.safetensors" \
  --data "$work/in#puts/my data" "${common[@]}" --out "$work/res3" >"$work/q.log" 2>&1 || { cat "$work/q.log"; fail "quoted values"; }
printf 'grid = "0.5\n' >"$work/configs/bad.ini"
if "$idprune" sweep --config "$work/configs/bad.ini" --model m --data d --out "$work/never" >"$work/bad.log" 2>&1; then
  fail "an unterminated quote was accepted"
fi
grep -q "config file '$work/configs/bad.ini' line 1: .*unterminated" "$work/bad.log" || { cat "$work/bad.log"; fail "unclear unterminated quote"; }
echo "config_paths: ok"
