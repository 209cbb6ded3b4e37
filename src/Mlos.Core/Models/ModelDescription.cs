using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Core.Models;

/// <summary>A tensor spec of a model, with its name read out of plugin memory.</summary>
public sealed record TensorDescription(string Name, SmiDtype Dtype, long[] Shape);

/// <summary>
/// What a model says about itself to a client, asked once for both front doors (the JSON model
/// info and the gRPC metadata and config): its typed I/O specs when the plugin has them, the
/// plugin's own info, and the reason for each part it could not give.
/// </summary>
public sealed record ModelDescription(TensorDescription[]? Inputs, TensorDescription[]? Outputs, string? IoError, string? Info, string? InfoError, ModelState State)
{
    /// <summary>
    /// Asks the plugin. Refused from inside a plugin call, like every call that runs plugin code
    /// (see PluginCalls); a model unregistered meanwhile is not found, as a later lookup would say.
    /// </summary>
    public static unsafe ModelDescription Of(Model m, bool withInfo = true)
    {
        PluginCalls.RefuseReentry("model_info");
        // Spec names are plugin memory, valid while the model is registered: copied while the
        // call still counts in flight, before an unregister could let the plugin free them.
        // A loaded model's specs were read at load (ModelSpecs); others are asked for.
        var (specs, ioError) = m.Specs is { } cached
            ? (cached, null)
            : Ask(m, (p, h) => p.ModelIo(h) is { } io ? ModelSpecs.From(io, m) : null);
        var (info, infoError) = withInfo ? Ask(m, static (p, h) => p.ModelInfo(h)) : (null, null);
        var state = m.State;
        if (state == ModelState.Unregistered) throw new MlosException(SmiStatus.NotFound, $"no model with id '{m.Id}' is registered");
        return new ModelDescription(specs?.Describe(inputs: true), specs?.Describe(inputs: false), ioError, info, infoError, state);
    }

    /// <summary>Triton's platform names for the frameworks it has them for; otherwise the framework.</summary>
    public static string Platform(Model m)
    {
        var framework = (m.Framework ?? m.Plugin.Frameworks.Split(',')[0]).ToLowerInvariant();
        return framework switch
        {
            "onnx" or "onnxruntime" => "onnxruntime_onnx",
            "pytorch" or "torchscript" => "pytorch_libtorch",
            "" => m.Plugin.Id,
            _ => framework,
        };
    }

    /// <summary>One question to the plugin on the model's handle (counted in flight); its failure as text.</summary>
    private static (T? Answer, string? Error) Ask<T>(Model m, Func<Plugin, nint, T?> question)
    {
        try { return (m.OnHandle(question), null); }
        catch (MlosException e) when (e.Status != SmiStatus.NotFound || m.State != ModelState.Unregistered) { return (default, e.Message); }
    }
}
