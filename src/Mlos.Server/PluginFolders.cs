using Mlos.Core;

namespace Mlos.Server;

/// <summary>At start the server loads the first-party plugins it finds in its plugin folders.</summary>
internal static class PluginFolders
{
    public static void LoadAll(ServerState state)
    {
        foreach (var dir in state.Options.PluginDirs.Where(Directory.Exists))
        {
            foreach (var file in Directory.EnumerateFiles(dir, "libmlos_*_plugin.so").Order())
            {
                try { state.Core.LoadPlugin(file); }
                catch (MlosException e) { Console.Error.WriteLine($"mlos_core: skipping {file}: {e.Message}"); }
            }
        }
    }
}
