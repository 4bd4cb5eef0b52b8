#!/usr/bin/env bash
# Builds the GPU bundle: everything `check.sh` needs on a CUDA machine that has PyTorch (>= 2.10)
# but no .NET and no network. See scripts/gpu/README.md.
#
#   scripts/gpu/pack.sh OUT_DIR
#
# OUT_DIR gets:
#   app.tar.xz      (app/, xz-compressed: the Orleans and Kubernetes assemblies the distributed
#                   runtime brought in do not fit 60 MiB uncompressed; check.sh unpacks it)
#   app/            framework-dependent publish of the oserve CLI for linux-x64, without the native
#                   libraries the CUDA machine supplies (libtorch from its PyTorch install) or never
#                   loads (OR-Tools, SkiaSharp/HarfBuzz: the planner and plots are not run there);
#                   only TorchSharp's own libLibTorchSharp.so stays.
#   dotnet.tar.xz   the .NET and ASP.NET Core runtimes this machine has (dotnet host + shared/), xz.
#   inputs/         ../shared/calibration/h200-shapes.json (calibration data, compared against) and
#                   the tiny cards of the CPU rehearsal.
#   check.sh, summarize.py, README.md
# It refuses to finish above 60 MiB.
set -euo pipefail
out=${1:?usage: scripts/gpu/pack.sh OUT_DIR}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
limit_mib=60

rm -rf "$out"
mkdir -p "$out/inputs/cards"
out=$(cd "$out" && pwd)

echo "== publish oserve (Release, linux-x64, framework-dependent)"
dotnet publish "$repo/Engine.CSharp/Engine.CSharp.csproj" -c Release -r linux-x64 --self-contained false \
  -o "$out/app" -nologo -v quiet -clp:ErrorsOnly
# Natives: keep TorchSharp's binding only. libtorch (CPU build here, CUDA build there) comes from
# the PyTorch install through LD_LIBRARY_PATH; the others belong to code paths check.sh never runs.
find "$out/app" -name '*.so' -o -name '*.so.*' | grep -v '/libLibTorchSharp\.so$' | xargs -r rm -f
rm -rf "$out/app/runtimes"
test -f "$out/app/libLibTorchSharp.so" || { echo "libLibTorchSharp.so missing from the publish output" >&2; exit 1; }

echo "== .NET runtimes"
dotnet_dir=$(dirname "$(readlink -f "$(command -v dotnet)")")
runtime=$(dotnet --list-runtimes | awk '$1 == "Microsoft.NETCore.App" && $2 ~ /^10\./ {print $2}' | sort -V | tail -n 1)
aspnet=$(dotnet --list-runtimes | awk '$1 == "Microsoft.AspNetCore.App" && $2 ~ /^10\./ {print $2}' | sort -V | tail -n 1)
test -n "$runtime" && test -n "$aspnet" || { echo "no .NET 10 runtimes found under $dotnet_dir" >&2; exit 1; }
tar -C "$dotnet_dir" -cf - dotnet host "shared/Microsoft.NETCore.App/$runtime" "shared/Microsoft.AspNetCore.App/$aspnet" \
  | xz -T0 -9 > "$out/dotnet.tar.xz"
echo "   Microsoft.NETCore.App $runtime, Microsoft.AspNetCore.App $aspnet"

echo "== app, compressed"
tar -C "$out" -cf - app | xz -T0 -9 > "$out/app.tar.xz"
rm -rf "$out/app"

echo "== inputs and scripts"
calibration="$repo/../shared/calibration/h200-shapes.json"
if [[ -f "$calibration" ]]; then cp "$calibration" "$out/inputs/"; else echo "   warning: $calibration not found; check.sh will skip the calibration comparison"; fi
cp "$here"/cards/*.yaml "$out/inputs/cards/"
cp "$here/check.sh" "$here/summarize.py" "$here/README.md" "$out/"
chmod +x "$out/check.sh"

size_kib=$(du -sk "$out" | cut -f1)
echo "== bundle: $out, $((size_kib / 1024)) MiB ($(find "$out" -type f | wc -l) files)"
if (( size_kib > limit_mib * 1024 )); then
  echo "the bundle exceeds $limit_mib MiB" >&2
  exit 1
fi
