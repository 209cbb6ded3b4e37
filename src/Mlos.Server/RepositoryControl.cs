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

    public IReadOnlyList<Entry> Index(bool readyOnly = false)
    {
        var models = state.Core.Models.ToDictionary(m => m.Id);
        var entries = new List<Entry>();
        foreach (var n in (repository?.Names ?? []).Union(models.Keys).Order())
        {
            bool ready = models.TryGetValue(n, out var m) && m.State == ModelState.Loaded;
            if (readyOnly && !ready) continue;
            entries.Add(new Entry(n, m?.Version, ready));
        }
        return entries;
    }

    public void Load(string id)
    {
        if (repository is not null) repository.Load(id);
        else state.Core.LoadModel(id);
        state.Log.Admin($"model '{id}' loaded");
    }

    public void Unload(string id)
    {
        id = state.Core.GetModel(id).Id;
        state.Core.UnloadModel(id);
        state.Log.Admin($"model '{id}' unloaded");
    }
}
