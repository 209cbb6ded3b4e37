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
    internal static void PointAtTheBuildsHost() => Environment.SetEnvironmentVariable("MLOS_PLUGIN_HOST", BuildTree.PluginHost);
}
