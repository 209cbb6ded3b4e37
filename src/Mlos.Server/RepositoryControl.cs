using Mlos.Smi.Abi;
using Mlos.Core;
using Mlos.Core.Models;

namespace Mlos.Server;

/// <summary>
/// The model repository extension's three actions, one implementation for REST and gRPC: the
/// index (repository folders and registered models), load and unload. Callers check the admin
/// rule (<see cref="AdminGate"/>) first.
/// </summary>
internal sealed class RepositoryControl(ServerState state, ModelRepository? repository)
{
    public readonly record struct Entry(string Name, string? Version, bool Ready);

    /// <summary>One entry per registered version (highest first), and one without a version for a repository folder nothing is registered from.</summary>
    public IReadOnlyList<Entry> Index(bool readyOnly = false)
    {
        var models = state.Core.Models.ToLookup(m => m.Id);
        var entries = new List<Entry>();
        foreach (var n in (repository?.Names ?? []).Union(models.Select(g => g.Key)).Order(StringComparer.Ordinal))
        {
            if (!models.Contains(n))
            {
                if (!readyOnly) entries.Add(new Entry(n, null, false));
                continue;
            }
            foreach (var m in models[n])
            {
                bool ready = m.IsReady;
                if (!readyOnly || ready) entries.Add(new Entry(n, m.Version, ready));
            }
        }
        return entries;
    }

    /// <summary>Triton's rule: with a repository, the load and unload calls are for explicit mode only.</summary>
    private void RequireExplicit(string action)
    {
        if (repository is null || state.Options.ModelControl == ModelControlMode.Explicit) return;
        throw new MlosException(SmiStatus.InvalidParam, state.Options.ModelControl == ModelControlMode.Poll
            ? $"explicit model {action} is not allowed while the repository is polled (--model-control-mode poll): change the folder instead"
            : $"explicit model {action} is not allowed in model control mode 'none': start mlos_core with --model-control-mode explicit");
    }

    public void Load(string id)
    {
        RequireExplicit("load");
        if (repository is not null) repository.Load(id);
        else state.Core.LoadModel(id);
        state.Log.Admin($"model '{id}' loaded");
    }

    public void Unload(string id)
    {
        RequireExplicit("unload");
        id = state.Core.GetModel(id).Id;
        state.Core.UnloadModel(id);
        state.Log.Admin($"model '{id}' unloaded");
    }
}
