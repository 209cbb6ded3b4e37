namespace Mlos.Server;

/// <summary>
/// One lock per name without one object per name ever seen: a fixed set, a name's lock chosen by
/// its hash. Two names may share a lock (they then wait for each other, which is only slower);
/// a server whose models come and go by the thousand (ModelMesh) keeps the same few objects.
/// </summary>
internal sealed class StripedLocks(int count = 64)
{
    private readonly object[] _locks = Enumerable.Range(0, count).Select(_ => new object()).ToArray();

    public object For(string name) => _locks[(uint)StringComparer.Ordinal.GetHashCode(name) % (uint)_locks.Length];
}
