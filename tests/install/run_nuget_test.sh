#!/usr/bin/env bash
# ctest nuget_test (#17): the Mlos.Smi NuGet package, used as a plugin author outside this tree
# would: `dotnet pack` into a local folder feed, a new project with <PackageReference
# Include="Mlos.Smi" />, PublishAot and SmiPluginType (the SDK's echo plugin's source), published
# to a .so, then loaded by the C host example through libmlos_core.so.
#   run_nuget_test.sh <build-dir> <source-dir> <version>
set -euo pipefail
build=$1
src=$2
version=$3
source "$(dirname "$0")/common.sh" nuget

dotnet pack "$src/src/Mlos.Smi/Mlos.Smi.csproj" -c Release -o "$work/feed" --nologo -v quiet >/dev/null
[ -f "$work/feed/Mlos.Smi.$version.nupkg" ] || fail "no Mlos.Smi.$version.nupkg ($(ls "$work/feed"))"
listed=$(/usr/bin/python3 -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$work/feed/Mlos.Smi.$version.nupkg")
for f in lib/net10.0/Mlos.Smi.dll buildTransitive/Mlos.Smi.targets README.md; do
  grep -qxF "$f" <<<"$listed" || fail "the package lacks $f"
done

mkdir -p "$work/plugin"
cp "$src/src/Mlos.Plugins.Echo/EchoPlugin.cs" "$work/plugin/"
cat >"$work/plugin/nuget.config" <<CONFIG
<configuration>
  <packageSources>
    <add key="local" value="$work/feed" />
  </packageSources>
</configuration>
CONFIG
cat >"$work/plugin/MyEcho.csproj" <<PROJECT
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>net10.0</TargetFramework>
    <Nullable>enable</Nullable>
    <ImplicitUsings>enable</ImplicitUsings>
    <PublishAot>true</PublishAot>
    <NativeLib>Shared</NativeLib>
    <RuntimeIdentifier>linux-x64</RuntimeIdentifier>
    <AssemblyName>libmy_echo_plugin</AssemblyName>
    <SmiPluginType>Mlos.Plugins.Echo.EchoPlugin</SmiPluginType>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Mlos.Smi" Version="$version" />
  </ItemGroup>
</Project>
PROJECT
# Its own packages folder, so that no earlier run's Mlos.Smi is taken from the cache; the rest
# (the AOT compiler) from the machine's, as a fallback folder, or from the machine's feeds.
(cd "$work/plugin" && dotnet publish -c Release -o "$work/plugin/out" --nologo -v quiet \
   -p:RestorePackagesPath="$work/packages" -p:RestoreAdditionalProjectFallbackFolders="$HOME/.nuget/packages" \
   -p:RestoreAdditionalProjectSources="https://api.nuget.org/v3/index.json" >"$work/publish.log" 2>&1) \
  || { tail -30 "$work/publish.log"; fail "publishing the plugin from the package"; }
so="$work/plugin/out/libmy_echo_plugin.so"
[ -f "$so" ] || fail "no $so"
grep -qE ' smi_plugin_init(@@[^ ]*)?$' <<<"$(nm -D --defined-only "$so")" || fail "$so does not export smi_plugin_init"
answer=$("$build/c-tests/mlos_host_example" "$so")
grep -q '10 bytes back: hello, SMI' <<<"$answer" || fail "the host example answered: $answer"
echo "nuget: Mlos.Smi $version packed, a plugin published from it outside the tree, loaded by libmlos_core.so"
echo "nuget test: passed"
