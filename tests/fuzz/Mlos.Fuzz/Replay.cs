using System.Diagnostics;

namespace Mlos.Fuzz;

/// <summary>
/// Runs a target on saved inputs (afl-fuzz's crashes, tests/fuzz/crashes) and prints, for each
/// that throws, the exception and the first frame in the code under test: the line that tells
/// one bug from another. Returns 1 if any input threw.
/// </summary>
internal static class Replay
{
    public static int Run(Action<ReadOnlySpan<byte>> target, string[] files)
    {
        int failed = 0;
        foreach (var file in files)
        {
            try { target(File.ReadAllBytes(file)); }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine($"{file}\n  {e.GetType().FullName}: {e.Message}\n  at {FrameUnderTest(e)}");
            }
        }
        Console.WriteLine($"replay: {failed} of {files.Length} inputs threw");
        return failed > 0 ? 1 : 0;
    }

    private static string FrameUnderTest(Exception e)
    {
        foreach (var frame in new StackTrace(e, fNeedFileInfo: true).GetFrames())
        {
            var type = frame.GetMethod()?.DeclaringType;
            if (type?.Namespace is { } ns && ns.StartsWith("Mlos.") && ns != typeof(Replay).Namespace)
                return $"{type.FullName}.{frame.GetMethod()!.Name} ({Path.GetFileName(frame.GetFileName())}:{frame.GetFileLineNumber()})";
        }
        return "(no frame in Mlos code)";
    }
}
