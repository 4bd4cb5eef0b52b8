// MSBuild inline task (see WeakenGlibcxx.targets for why); compiled for netstandard2.0 by
// RoslynCodeTaskFactory, so it uses only APIs from there. Plain ELF64 little-endian parsing:
// find the SHT_GNU_verneed section, walk its Verneed/Vernaux chains, and set VER_FLG_WEAK on the
// Vernaux entry whose name is the requested version. No other byte of the file changes.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class WeakenElfVersionNeed : Task
{
    [Required] public string Directory { get; set; } = "";
    [Required] public string FileName { get; set; } = "";
    [Required] public string Version { get; set; } = "";

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;

    public override bool Execute()
    {
        if (!System.IO.Directory.Exists(Directory)) return true;
        var targets = System.IO.Directory.GetFiles(Directory, FileName, SearchOption.AllDirectories);
        if (targets.Length == 0) return true;
        if (SystemLibStdCxxHas(Version))
        {
            Log.LogMessage(MessageImportance.Low, $"System libstdc++ defines {Version}; {FileName} left as shipped.");
            return true;
        }
        foreach (var path in targets)
        {
            try
            {
                var bytes = File.ReadAllBytes(path);
                var result = Weaken(bytes, Version);
                if (result == null) { Log.LogMessage(MessageImportance.Low, $"{path}: no requirement on {Version}."); continue; }
                if (result == false) { Log.LogMessage(MessageImportance.Low, $"{path}: {Version} already weak."); continue; }
                var tmp = path + ".weak.tmp";
                File.WriteAllBytes(tmp, bytes);
                File.Delete(path); // unlink first: never write through a hard link into the NuGet cache
                File.Move(tmp, path);
                Log.LogMessage(MessageImportance.High, $"OServe: marked {Version} weak in {path} (system libstdc++ lacks it).");
            }
            catch (Exception e)
            {
                Log.LogError($"OServe: could not weaken {Version} in {path}: {e.Message}");
                return false;
            }
        }
        return true;
    }

    static bool SystemLibStdCxxHas(string version)
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/lib/aarch64-linux-gnu/libstdc++.so.6",
            "/usr/lib64/libstdc++.so.6", "/usr/lib/libstdc++.so.6", "/lib64/libstdc++.so.6",
        };
        var needle = Encoding.ASCII.GetBytes(version + "\0");
        foreach (var c in candidates)
        {
            if (!File.Exists(c)) continue;
            return IndexOf(File.ReadAllBytes(c), needle) >= 0;
        }
        return false; // no libstdc++ found where we look: weakening is harmless, so do it.
    }

    static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    /// <returns>null: no such requirement; false: already weak; true: flag set in <paramref name="elf"/>.</returns>
    public static bool? Weaken(byte[] elf, string version)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("only ELF64 little-endian is supported");
        ulong shoff = U64(elf, 0x28);
        int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
        for (int i = 0; i < shnum; i++)
        {
            int sh = checked((int)shoff + i * shentsize);
            if (U32(elf, sh + 4) != ShtGnuVerneed) continue;
            int offset = checked((int)U64(elf, sh + 0x18));
            int link = (int)U32(elf, sh + 0x28);
            int strOff = checked((int)U64(elf, checked((int)shoff + link * shentsize) + 0x18));
            int vn = offset;
            while (true)
            {
                int cnt = U16(elf, vn + 2);
                int aux = vn + (int)U32(elf, vn + 8);
                for (int k = 0; k < cnt; k++)
                {
                    var name = CString(elf, strOff + (int)U32(elf, aux + 8));
                    if (name == version)
                    {
                        ushort flags = (ushort)U16(elf, aux + 4);
                        if ((flags & VerFlgWeak) != 0) return false;
                        flags |= VerFlgWeak;
                        elf[aux + 4] = (byte)flags; elf[aux + 5] = (byte)(flags >> 8);
                        return true;
                    }
                    uint nextAux = U32(elf, aux + 12);
                    if (nextAux == 0) break;
                    aux += (int)nextAux;
                }
                uint next = U32(elf, vn + 12);
                if (next == 0) break;
                vn += (int)next;
            }
        }
        return null;
    }

    static int U16(byte[] b, int o) => b[o] | (b[o + 1] << 8);
    static uint U32(byte[] b, int o) => BitConverter.ToUInt32(b, o);
    static ulong U64(byte[] b, int o) => BitConverter.ToUInt64(b, o);
    static string CString(byte[] b, int o) { int e = o; while (b[e] != 0) e++; return Encoding.ASCII.GetString(b, o, e - o); }
}
