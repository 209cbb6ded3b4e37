/* Marks one symbol-version requirement of an ELF64 shared object as weak.
 *
 * TorchSharp's libLibTorchSharp.so is built with GCC 13 and so requires GLIBCXX_3.4.32, for a
 * single symbol it never relocates against (_ZSt21ios_base_library_initv, GCC 13's iostream
 * initialisation marker). Debian 12's libstdc++ stops at GLIBCXX_3.4.30, and the dynamic
 * loader refuses the whole library over that one requirement. A requirement flagged
 * VER_FLG_WEAK is only reported, not enforced: the fix is the two bytes of that entry's
 * vna_flags in .gnu.version_r.
 *
 *   elf_weak_version <file.so> <VERSION>          patch in place (idempotent)
 *   elf_weak_version --check <file.so> <VERSION>  exit 0 if weak, 1 if strict, 2 if absent
 */
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char* read_file(const char* path, size_t* size) {
    FILE* f = fopen(path, "rb");
    unsigned char* data;
    long n;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = (unsigned char*)malloc((size_t)n);
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* The vna_flags of the requirement named `version`, or NULL. Bounds-checked throughout. */
static Elf64_Half* find_flags(unsigned char* data, size_t size, const char* version) {
    Elf64_Ehdr* eh = (Elf64_Ehdr*)data;
    Elf64_Shdr* sections;
    int i;
    if (size < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64) return NULL;
    if (eh->e_shoff == 0 || eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > size) return NULL;
    sections = (Elf64_Shdr*)(data + eh->e_shoff);
    for (i = 0; i < eh->e_shnum; i++) {
        Elf64_Shdr* s = &sections[i];
        Elf64_Shdr* strtab;
        size_t offset;
        unsigned n;
        if (s->sh_type != SHT_GNU_verneed || s->sh_link >= eh->e_shnum) continue;
        strtab = &sections[s->sh_link];
        offset = s->sh_offset;
        for (n = 0; n < s->sh_info && offset + sizeof(Elf64_Verneed) <= size; n++) {
            Elf64_Verneed* need = (Elf64_Verneed*)(data + offset);
            size_t aux = offset + need->vn_aux;
            unsigned k;
            for (k = 0; k < need->vn_cnt && aux + sizeof(Elf64_Vernaux) <= size; k++) {
                Elf64_Vernaux* v = (Elf64_Vernaux*)(data + aux);
                size_t name = strtab->sh_offset + v->vna_name;
                if (name < size && strncmp((const char*)data + name, version, size - name) == 0) return &v->vna_flags;
                if (!v->vna_next) break;
                aux += v->vna_next;
            }
            if (!need->vn_next) break;
            offset += need->vn_next;
        }
    }
    return NULL;
}

int main(int argc, char** argv) {
    int check = argc == 4 && strcmp(argv[1], "--check") == 0;
    const char* path = argv[check ? 2 : 1];
    const char* version = argv[check ? 3 : 2];
    unsigned char* data;
    size_t size;
    Elf64_Half* flags;
    FILE* out;
    if (argc != (check ? 4 : 3)) {
        fprintf(stderr, "usage: %s [--check] <file.so> <VERSION>\n", argv[0]);
        return 2;
    }
    data = read_file(path, &size);
    if (!data) {
        fprintf(stderr, "cannot read %s\n", path);
        return 2;
    }
    flags = find_flags(data, size, version);
    if (!flags) {
        fprintf(stderr, "%s does not require %s\n", path, version);
        return 2;
    }
    if (check) return (*flags & VER_FLG_WEAK) ? 0 : 1;
    if (*flags & VER_FLG_WEAK) return 0;
    *flags |= VER_FLG_WEAK;
    out = fopen(path, "r+b");
    if (!out || fseek(out, (long)((unsigned char*)flags - data), SEEK_SET) != 0 || fwrite(flags, sizeof *flags, 1, out) != 1) {
        fprintf(stderr, "cannot write %s\n", path);
        return 2;
    }
    fclose(out);
    printf("%s: %s is now a weak requirement\n", path, version);
    return 0;
}
