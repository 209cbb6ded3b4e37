using System.Text.RegularExpressions;

namespace Mlos.Server;

/// <summary>
/// A failure's message as a client should read it. Messages from plugins carry what their
/// runtimes put in them: ONNX Runtime's source paths and C++ signatures, Python's file and line,
/// .NET exception type names. Those tell the client nothing it can act on and tell an attacker
/// about the build; the full message goes to the log (<see cref="ServerLog"/>), this to the body.
/// </summary>
internal static partial class ClientText
{
    public static string Plain(string message)
    {
        if (message.IndexOf('/') < 0 && message.IndexOf("Exception", StringComparison.Ordinal) < 0 && message.IndexOf("::", StringComparison.Ordinal) < 0
            && message.IndexOf("0x", StringComparison.Ordinal) < 0)
            return message; // the common case: our own words
        var text = NativeBacktrace().Replace(message, "");
        text = PythonLocation().Replace(text, "");
        text = Address().Replace(text, "");
        text = SourceLocation().Replace(text, "");
        text = CppSignature().Replace(text, "");
        text = ExceptionName().Replace(text, "");
        return Spaces().Replace(text, " ").Trim();
    }

    /// <summary>libtorch's backtrace: "Exception raised from f at file:line (most recent call first): frame #0: …" to the end.</summary>
    [GeneratedRegex(@"\s*Exception raised from [\s\S]*$")]
    private static partial Regex NativeBacktrace();

    /// <summary>A code or data address ("0x7f273c1881a0"): with the library paths, the map of a process.</summary>
    [GeneratedRegex(@"\b0x[0-9a-fA-F]{6,}\b")]
    private static partial Regex Address();

    /// <summary>The bridge's " (at /path/file.py:13 in method)".</summary>
    [GeneratedRegex(@"\s*\(at [^()\s]+:\d+ in [^()]*\)")]
    private static partial Regex PythonLocation();

    /// <summary>A source file path with a line number: "/onnxruntime_src/onnxruntime/core/x.h:15".</summary>
    [GeneratedRegex(@"(?:[A-Za-z]:)?[\w.\-+]*(?:[/\\][\w.\-+]+)+\.(?:h|hh|hpp|c|cc|cpp|cxx|cs|py|go|so(?:\.\d+)*)(?::\d+)?\b")]
    private static partial Regex SourceLocation();

    /// <summary>A C++ function signature: "onnxruntime::GemmHelper::GemmHelper(const TensorShape&amp;, bool)".</summary>
    [GeneratedRegex(@"(?:\w+::)+~?\w+(?:<[^<>]*>)?\((?:[^()]|\([^()]*\))*\)(?:\s*const)?")]
    private static partial Regex CppSignature();

    /// <summary>A .NET exception type name and its colon: "System.InvalidOperationException: ".</summary>
    [GeneratedRegex(@"\b(?:[A-Z]\w*\.)*[A-Z]\w*Exception\b:?\s*")]
    private static partial Regex ExceptionName();

    [GeneratedRegex(@"[ \t]{2,}")]
    private static partial Regex Spaces();
}
