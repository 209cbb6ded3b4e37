using Mlos.Core;

namespace Mlos.Server;

/// <summary>
/// At start the server opens and lists the first-party plugins it finds in its plugin folders;
/// each initializes (loads its framework) when the first model needs it.
/// </summary>
internal static class PluginFolders
{
    public const string PythonBridge = "libmlos_python_plugin.so";

    public static void LoadAll(ServerState state)
    {
        foreach (var dir in state.Options.PluginDirs.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(dir, "libmlos_*_plugin.so").Order())
            {
                // The Python bridge serves the class its config names: it is registered with one
                // (POST /plugins/register {"endpoint", "config": {"module", "class", "path"}}).
                if (Path.GetFileName(file) == PythonBridge) continue;
                // The same rule as the register route: a link that leads out of the plugin folders is not a plugin of theirs.
                try
                {
                    if (state.InPluginFolder(file) is not { } real)
                    {
                        state.Log.Warn($"skipping {file}: it links to a file outside the plugin folders");
                        continue;
                    }
                    var plugin = state.Core.LoadPlugin(real, deferInitialize: true);
                    state.Log.Admin($"plugin '{plugin.Id}' loaded from {real} (initialized by its first model)");
                }
                catch (MlosException e) { state.Log.Warn($"skipping {file}: {e.Message}"); }
            }
        }
    }
}
