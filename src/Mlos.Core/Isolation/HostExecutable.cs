using Mlos.Smi.Interop;

namespace Mlos.Core.Isolation;

/// <summary>
/// Where <c>mlos_plugin_host</c> is: <c>MLOS_PLUGIN_HOST</c> when set, else beside the file this
/// code was loaded from (<c>mlos_core</c> or <c>libmlos_core.so</c>, as in the build tree), else in
/// <c>../bin</c> from it (an installed <c>lib/libmlos_core.so</c>), else beside the program.
/// </summary>
internal static unsafe class HostExecutable
{
    public const string FileName = "mlos_plugin_host";

    public static string Find()
    {
        var set = Environment.GetEnvironmentVariable("MLOS_PLUGIN_HOST");
        if (!string.IsNullOrEmpty(set)) return Path.GetFullPath(set);
        var candidates = new List<string>();
        if (Libdl.PathOf(OutputLease.CodeAddress) is { } module && Path.GetDirectoryName(Path.GetFullPath(module)) is { } dir)
        {
            candidates.Add(Path.Combine(dir, FileName));
            candidates.Add(Path.GetFullPath(Path.Combine(dir, "..", "bin", FileName)));
        }
        if (Environment.ProcessPath is { } program && Path.GetDirectoryName(program) is { } programDir)
            candidates.Add(Path.Combine(programDir, FileName));
        candidates.Add(Path.Combine(AppContext.BaseDirectory, FileName));
        foreach (var c in candidates)
            if (File.Exists(c)) return c;
        throw new MlosException(Smi.Abi.SmiStatus.NotFound,
            $"isolation \"process\" needs {FileName}, which is not beside this program ({string.Join(", ", candidates.Distinct())}); set MLOS_PLUGIN_HOST to its path");
    }
}
