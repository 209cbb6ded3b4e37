using System.Runtime.CompilerServices;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// This test assembly hosts the core like any program that is not beside mlos_plugin_host, and
/// the default isolation ("auto") runs every plugin but the first-party C# ones in a host: tell
/// the core where the build put it, before any test loads a plugin.
/// </summary>
internal static class PluginHostSetup
{
    [ModuleInitializer]
    internal static void PointAtTheBuildsHost()
    {
        // A host set by whoever runs the tests wins; a build without one fails the tests that need it, with the path.
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MLOS_PLUGIN_HOST"))) return;
        var host = Path.Combine(BuildTree.Dir, "mlos_plugin_host");
        if (File.Exists(host)) Environment.SetEnvironmentVariable("MLOS_PLUGIN_HOST", host);
    }
}
