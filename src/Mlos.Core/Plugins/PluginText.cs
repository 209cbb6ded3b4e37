using System.Text;

namespace Mlos.Core.Plugins;

/// <summary>
/// Strings a plugin owns (names, versions, last errors), read without trusting them: at most
/// <see cref="MaxBytes"/> bytes are scanned for the terminator, and invalid UTF-8 becomes U+FFFD.
/// </summary>
internal static unsafe class PluginText
{
    public const int MaxBytes = 4096;

    public static string? Read(byte* s)
    {
        if (s == null) return null;
        int n = 0;
        while (n < MaxBytes && s[n] != 0) n++;
        return Encoding.UTF8.GetString(s, n);
    }
}
