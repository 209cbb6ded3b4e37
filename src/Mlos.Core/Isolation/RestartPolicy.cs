using System.Text.Json;

namespace Mlos.Core.Isolation;

/// <summary>
/// How an isolated plugin's host that died is started again (option <c>restart</c>:
/// <c>{"max":5,"window_s":60,"backoff_ms":100,"max_backoff_ms":10000}</c>): after a wait that
/// starts at <see cref="BackoffMs"/> and doubles with every crash in the window, up to
/// <see cref="MaxBackoffMs"/>; a host that dies <see cref="Max"/> times within
/// <see cref="WindowSeconds"/> stays down (and <c>/plugins</c> says so). <c>"max": 0</c>: never restarted.
/// </summary>
public sealed record RestartPolicy(int Max = 5, int WindowSeconds = 60, int BackoffMs = 100, int MaxBackoffMs = 10_000)
{
    public static readonly RestartPolicy Default = new();

    public static RestartPolicy Parse(JsonElement value, string what)
    {
        var policy = Default;
        foreach (var field in JsonConfig.Object(value, what).EnumerateObject())
        {
            int n = JsonConfig.NonNegative(field, what);
            policy = field.Name switch
            {
                "max" => policy with { Max = n },
                "window_s" => policy with { WindowSeconds = n },
                "backoff_ms" => policy with { BackoffMs = n },
                "max_backoff_ms" => policy with { MaxBackoffMs = n },
                _ => throw JsonConfig.UnknownKey(what, field.Name, "max, window_s, backoff_ms, max_backoff_ms"),
            };
        }
        return policy;
    }

    /// <summary>The wait before restart number <paramref name="crashesInWindow"/> (1 for the first crash in the window).</summary>
    public int Delay(int crashesInWindow)
    {
        long delay = BackoffMs;
        for (int i = 1; i < crashesInWindow && delay < MaxBackoffMs; i++) delay *= 2;
        return (int)Math.Min(delay, MaxBackoffMs);
    }
}
