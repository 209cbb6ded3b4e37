namespace Mlos.Tests;

/// <summary>
/// Where the CMake build put the native artifacts: $MLOS_BUILD_DIR (set by ctest), else the
/// repository's build/ folder. Tests load the real published .so files from there.
/// </summary>
internal static class BuildTree
{
    public static string Dir { get; } = Find();

    public static string PluginDir => Path.Combine(Dir, "plugins");
    public static string EchoPlugin => Require(Path.Combine(Dir, "plugins", "libmlos_echo_plugin.so"));
    public static string GuidePlugin => Require(Path.Combine(Dir, "c-tests", "plugins", "libmlos_guide_plugin.so"));

    /// <summary>A fixture plugin of c-tests/plugins (hostile, guide…), as the build put it.</summary>
    public static string FixturePlugin(string name) => Require(Path.Combine(Dir, "c-tests", "plugins", name));

    /// <summary>The plugin host executable isolated plugins run in.</summary>
    public static string PluginHost => Require(Path.Combine(Dir, "mlos_plugin_host"));

    public static string GoPlugin => Require(Path.Combine(Dir, "c-tests", "plugins", "libmlos_go_plugin.so"));

    /// <summary>The repository (the build folder's parent).</summary>
    public static string Repo => Path.GetDirectoryName(Path.GetFullPath(Dir))!;

    /// <summary>tests/models/&lt;kind&gt; in the repository.</summary>
    public static string Models(string kind) => Path.Combine(Path.GetDirectoryName(Path.GetFullPath(Dir))!, "tests", "models", kind);

    public static string Require(string path) =>
        File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: build first (cmake --workflow --preset default)");

    private static string Find()
    {
        var env = Environment.GetEnvironmentVariable("MLOS_BUILD_DIR");
        if (!string.IsNullOrEmpty(env)) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "MlosNative.sln")))
                return Path.Combine(dir.FullName, "build");
        throw new DirectoryNotFoundException("cannot find the repository's build folder; set MLOS_BUILD_DIR");
    }
}

/// <summary>
/// Plugin libraries are process-wide and owned by one core at a time, so the tests that load
/// them run one after another.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PluginCollection
{
    public const string Name = "plugins";
}
