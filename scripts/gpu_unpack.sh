# Sourced by scripts/gpu_check.sh and scripts/gpu_probe.sh (from the repository root, with PY
# set): unpacks what scripts/gpu_pack.sh compressed into .gpu/ (xz, read with Python's lzma: the
# GPU machine needs no xz binary), skipping files already unpacked from the same archive.
for z in .gpu/*.xz; do
  [ -e "$z" ] || continue
  f="${z%.xz}"
  [ -e "$f" ] && [ "$f" -nt "$z" ] && continue
  "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$z" "$f" \
    && chmod +x "$f"
done
