using Mlos.Core.Plugins;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// A Python class written into a module of a temporary folder, for the Python bridge to serve:
/// how a test gets a model that behaves exactly as it needs. The folder goes on dispose.
/// </summary>
internal sealed class PythonClass : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mlos-py-").FullName;
    private readonly string _module;
    private readonly string _class;

    public PythonClass(string module, string className, string source)
    {
        _module = module;
        _class = className;
        File.WriteAllText(Path.Combine(_dir, module + ".py"), source);
    }

    /// <summary>Loads the bridge into <paramref name="core"/> serving this class (plugin id "python-bridge").</summary>
    public Plugin LoadInto(MlosCore core) =>
        core.LoadPlugin(Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so"),
            config: $$"""{"module":"{{_module}}","class":"{{_class}}","path":"{{_dir}}"}""");

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
