using System.Runtime.InteropServices;
using Mlos.Smi.Abi;

namespace Mlos.Benchmarks;

/// <summary>
/// The part of mlos_core.h the in-process benchmarks call, bound to the build tree's
/// libmlos_core.so (the first command-line argument is the build folder).
/// </summary>
internal static unsafe partial class Core
{
    private const string Lib = "libmlos_core.so";

    static Core() => NativeLibrary.SetDllImportResolver(typeof(Core).Assembly, (name, _, _) =>
        name == Lib ? NativeLibrary.Load(Path.Combine(Path.GetFullPath(Environment.GetCommandLineArgs().Skip(1).FirstOrDefault() ?? "build"), Lib)) : 0);

    public static nint Create()
    {
        nint core;
        Check(mlos_core_create(null, &core));
        return core;
    }

    public static int LoadPlugin(nint core, string path, string? id, string? config) => mlos_core_load_plugin(core, path, id, config);
    public static int RegisterModel(nint core, string id, string plugin, string path, string? options) => mlos_core_register_model(core, id, plugin, path, options);
    public static int LoadModel(nint core, string id) => mlos_core_load_model(core, id);
    public static int Destroy(nint core) => mlos_core_destroy(core);

    public static int Infer(nint core, ReadOnlySpan<byte> id, SmiTensor* inputs, nuint n, SmiTensor* outputs, nuint* nOut)
    {
        Span<byte> z = stackalloc byte[id.Length + 1];
        id.CopyTo(z);
        fixed (byte* p = z) return mlos_core_infer(core, p, inputs, n, outputs, nOut);
    }

    public static void Check(int status)
    {
        if (status != 0) throw new InvalidOperationException($"status {status}: {Marshal.PtrToStringUTF8(mlos_core_last_error())}");
    }

    [LibraryImport(Lib)] private static partial int mlos_core_create(byte* config, nint* core);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial int mlos_core_load_plugin(nint core, string path, string? id, string? config);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial int mlos_core_register_model(nint core, string id, string plugin, string path, string? options);
    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)] private static partial int mlos_core_load_model(nint core, string id);
    [LibraryImport(Lib)] private static partial int mlos_core_destroy(nint core);
    [LibraryImport(Lib)] private static partial int mlos_core_infer(nint core, byte* id, SmiTensor* inputs, nuint n, SmiTensor* outputs, nuint* nOut);
    [LibraryImport(Lib)] private static partial nint mlos_core_last_error();
}

/// <summary>Timing helpers shared by the in-process benchmarks.</summary>
internal static class Timing
{
    /// <summary>Mean microseconds per call of <paramref name="run"/> after a 10% warm-up.</summary>
    public static double Time(int iterations, Action run)
    {
        for (int i = 0; i < iterations / 10; i++) run();
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < iterations; i++) run();
        return sw.Elapsed.TotalMicroseconds / iterations;
    }

    public static double Median(List<double> xs) => xs.Order().ElementAt(xs.Count / 2);
}
