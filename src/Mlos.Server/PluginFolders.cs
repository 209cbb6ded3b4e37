using Mlos.Core;

namespace Mlos.Server;

/// <summary>At start the server loads the first-party plugins it finds in its plugin folders.</summary>
internal static class PluginFolders
{
    private const string PythonBridge = "libmlos_python_plugin.so";

    public static void LoadAll(ServerState state)
    {
        foreach (var dir in state.Options.PluginDirs.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(dir, "libmlos_*_plugin.so").Order())
            {
                // The Python bridge serves the class its config names: it is registered with one
                // (POST /plugins/register {"endpoint", "config": {"module", "class", "path"}}).
                if (Path.GetFileName(file) == PythonBridge) continue;
                try { state.Core.LoadPlugin(file); }
                catch (MlosException e) { Console.Error.WriteLine($"mlos_core: skipping {file}: {e.Message}"); }
            }
        }
    }
}
