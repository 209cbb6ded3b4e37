using Mlos.Smi.Abi;

namespace Mlos.Core.Models;

/// <summary>
/// Every registered version of one model id, highest first (Triton's model: a name whose numbered
/// versions are served side by side). Immutable: the registry swaps in a new set on every change,
/// so a lookup reads one array without a lock. Versions that are whole numbers order as numbers,
/// above any other text (which orders ordinally); a model registered without one is version "1".
/// </summary>
public sealed class ModelVersions
{
    private readonly Model[] _all;

    private ModelVersions(Model[] all) => _all = all;

    public static ModelVersions Of(Model model) => new([model]);

    /// <summary>Highest first.</summary>
    public IReadOnlyList<Model> All => _all;

    /// <summary>
    /// What an unversioned request reaches: the highest version that is loaded, else the highest.
    /// One version (the usual case) costs one array read.
    /// </summary>
    public Model Current
    {
        get
        {
            var all = _all;
            if (all.Length == 1) return all[0];
            foreach (var m in all)
                if (m.State == ModelState.Loaded) return m;
            return all[0];
        }
    }

    public Model? Find(string version)
    {
        foreach (var m in _all)
            if (m.ServedVersion == version) return m;
        return null;
    }

    /// <summary>The model at <paramref name="version"/> (null: <see cref="Current"/>); NOT_FOUND naming the versions there are.</summary>
    public Model Get(string? version) =>
        version is null ? Current
        : Find(version) ?? throw new MlosException(SmiStatus.NotFound,
            $"model '{_all[0].Id}' has no version {version} (versions: {string.Join(", ", _all.Select(m => m.ServedVersion))})");

    public ModelVersions With(Model model) => new([.. _all.Append(model).OrderByDescending(m => m.ServedVersion, Order.Instance)]);

    /// <summary>The set without <paramref name="model"/>; null when it was the last.</summary>
    public ModelVersions? Without(Model model)
    {
        var rest = _all.Where(m => m != model).ToArray();
        return rest.Length == 0 ? null : new ModelVersions(rest);
    }

    /// <summary>Whole numbers as numbers, above other text.</summary>
    public sealed class Order : IComparer<string>
    {
        public static readonly Order Instance = new();

        public int Compare(string? a, string? b)
        {
            bool na = ulong.TryParse(a, System.Globalization.NumberStyles.None, null, out var x);
            bool nb = ulong.TryParse(b, System.Globalization.NumberStyles.None, null, out var y);
            if (na && nb) return x.CompareTo(y);
            if (na != nb) return na ? 1 : -1;
            return string.CompareOrdinal(a, b);
        }
    }
}
