/* The task journal: a directory holding one small binary file per finished task, so a sweep
 * killed at any moment (kill -9, node failure, SLURM time limit) resumes where it stopped.
 * File name: 16 hex digits of the FNV-1a hash of the task key, ".rec". Layout (little-endian
 * host order, this is a local cache, not an exchange format): "RDMLREC1", u64 key length,
 * the key bytes, u64 n, n float64, u64 FNV-1a of everything before it. Writes go to
 * "<name>.tmp-<pid>" first, are fsync'ed and renamed, so only complete records ever carry the
 * final name; reads verify the key text (hash collisions) and the checksum. Records of
 * results already committed are pruned by key prefix (rdml_journal_prune). Leaves out:
 * locking (the commands that write beside run.output hold its lock, rdml/lock.h; array
 * shares writing the same task write the same bytes, the last rename wins) and compaction
 * (a record is a few KB to a few MB). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rdml/mpiutil.h"
#include "rdml/sched.h"

struct rdml_journal {
    char dir[4096];
};

static const char MAGIC[8] = {'R', 'D', 'M', 'L', 'R', 'E', 'C', '1'};

uint64_t rdml_hash_str(const char *s, uint64_t h0) {
    uint64_t h = h0 ? h0 : 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t hash_bytes(const void *b, size_t n, uint64_t h) {
    const unsigned char *p = b;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void rdml_hash_hex(uint64_t h, char *out) { snprintf(out, 17, "%016llx", (unsigned long long)h); }

void rdml_rec_free(rdml_rec *r) {
    if (!r) return;
    free(r->v);
    r->v = NULL;
    r->n = 0;
}

void rdml_recs_free(rdml_rec *r, int64_t n) {
    if (!r) return;
    for (int64_t i = 0; i < n; i++) rdml_rec_free(&r[i]);
    free(r);
}

static void rec_path(const rdml_journal *j, const char *key, char *out, size_t len) {
    char hex[17];
    rdml_hash_hex(rdml_hash_str(key, 0), hex);
    snprintf(out, len, "%s/%s.rec", j->dir, hex);
}

static int mkdir_p(rdml_ctx *ctx, const char *dir) {
    char tmp[4096];
    size_t n = rdml_strlcpy(tmp, dir, sizeof tmp);
    if (n >= sizeof tmp) return RDML_FAIL(ctx, RDML_EIO, "journal path too long: %s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
            return RDML_FAIL(ctx, RDML_EIO, "cannot create directory %s: %s (hint: check that "
                             "run.output points to a writable place)", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
        return RDML_FAIL(ctx, RDML_EIO, "cannot create the journal directory %s: %s (hint: check "
                         "that run.output points to a writable place)", tmp, strerror(errno));
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return RDML_FAIL(ctx, RDML_EIO, "journal %s exists but is not a directory (hint: remove "
                         "it or change run.output)", tmp);
    return RDML_OK;
}

static void remove_tmp_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4608];
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp-")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

int rdml_journal_open(rdml_ctx *ctx, MPI_Comm comm, const char *dir, int cleanup,
                      rdml_journal **out) {
    *out = NULL;
    rdml_journal *j = rdml_calloc(ctx, 1, sizeof *j, "journal");
    int rc = j ? RDML_OK : ctx->code;
    if (!rc && rdml_strlcpy(j->dir, dir, sizeof j->dir) >= sizeof j->dir)
        rc = RDML_FAIL(ctx, RDML_EIO, "journal path too long: %s", dir);
    if (!rc && ctx->rank == 0) {
        rc = mkdir_p(ctx, dir);
        if (!rc && cleanup) remove_tmp_files(dir);
    }
    rc = rdml_agree(ctx, comm, rc);
    if (rc) {
        free(j);
        return rc;
    }
    *out = j;
    return RDML_OK;
}

const char *rdml_journal_dir(const rdml_journal *j) { return j->dir; }

int rdml_journal_has(const rdml_journal *j, const char *key) {
    char p[4200];
    rec_path(j, key, p, sizeof p);
    return access(p, F_OK) == 0;
}

int rdml_journal_get(rdml_ctx *ctx, const rdml_journal *j, const char *key, rdml_rec *rec,
                     int *found) {
    char p[4200];
    rec_path(j, key, p, sizeof p);
    rec->n = 0;
    rec->v = NULL;
    *found = 0;
    FILE *f = fopen(p, "rb");
    if (!f) {
        if (errno == ENOENT) return RDML_OK;
        return RDML_FAIL(ctx, RDML_EIO, "cannot read journal record %s: %s", p, strerror(errno));
    }
    char magic[8];
    uint64_t klen = 0, n = 0, sum = 0, h = 1469598103934665603ULL;
    char *k = NULL;
    int rc = RDML_OK;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, MAGIC, 8) != 0 ||
        fread(&klen, 8, 1, f) != 1 || klen > (1u << 20)) {
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "journal record %s is not an rdmlearn record (hint: "
                       "delete it; the task is recomputed)", p);
        goto done;
    }
    h = hash_bytes(magic, 8, h);
    h = hash_bytes(&klen, 8, h);
    k = malloc(klen + 1);
    if (!k) {
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading %s", p);
        goto done;
    }
    if (fread(k, 1, klen, f) != klen || fread(&n, 8, 1, f) != 1 || n > (1ULL << 40)) {
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "journal record %s is truncated (hint: delete it; the "
                       "task is recomputed)", p);
        goto done;
    }
    k[klen] = 0;
    h = hash_bytes(k, klen, h);
    h = hash_bytes(&n, 8, h);
    if (strcmp(k, key) != 0) {
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "journal record %s holds task '%s', not '%s' (a hash "
                       "collision; hint: delete the record)", p, k, key);
        goto done;
    }
    rec->v = n ? malloc((size_t)n * sizeof *rec->v) : NULL;
    if (n && !rec->v) {
        rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory reading %s (%llu values)", p,
                       (unsigned long long)n);
        goto done;
    }
    if ((n && fread(rec->v, sizeof *rec->v, (size_t)n, f) != n) || fread(&sum, 8, 1, f) != 1) {
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "journal record %s is truncated (hint: delete it; the "
                       "task is recomputed)", p);
        goto done;
    }
    h = hash_bytes(rec->v, (size_t)n * sizeof *rec->v, h);
    if (h != sum) {
        rc = RDML_FAIL(ctx, RDML_EFORMAT, "journal record %s fails its checksum (hint: delete "
                       "it; the task is recomputed)", p);
        goto done;
    }
    rec->n = (int64_t)n;
    *found = 1;
done:
    free(k);
    fclose(f);
    if (rc) rdml_rec_free(rec);
    return rc;
}

static int write_all(int fd, const void *b, size_t n) {
    const char *p = b;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int rdml_journal_put(rdml_ctx *ctx, const rdml_journal *j, const char *key, const rdml_rec *rec) {
    char p[4200], tmp[4300];
    rec_path(j, key, p, sizeof p);
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", p, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0)
        return RDML_FAIL(ctx, RDML_EIO, "cannot write journal record %s: %s (hint: is the disk "
                         "full or the directory read-only?)", tmp, strerror(errno));
    uint64_t klen = strlen(key), n = (uint64_t)rec->n, h = 1469598103934665603ULL;
    h = hash_bytes(MAGIC, 8, h);
    h = hash_bytes(&klen, 8, h);
    h = hash_bytes(key, klen, h);
    h = hash_bytes(&n, 8, h);
    h = hash_bytes(rec->v, (size_t)n * sizeof *rec->v, h);
    int bad = write_all(fd, MAGIC, 8) || write_all(fd, &klen, 8) || write_all(fd, key, klen) ||
              write_all(fd, &n, 8) || write_all(fd, rec->v, (size_t)n * sizeof *rec->v) ||
              write_all(fd, &h, 8) || fsync(fd) != 0;
    int err = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        err = errno;
    }
    if (!bad && rename(tmp, p) != 0) {
        bad = 1;
        err = errno;
    }
    if (bad) {
        unlink(tmp);
        return RDML_FAIL(ctx, RDML_EIO, "cannot write journal record %s: %s (hint: is the disk "
                         "full?)", p, strerror(err));
    }
    return RDML_OK;
}

int rdml_journal_remove(rdml_ctx *ctx, const rdml_journal *j, const char *key) {
    char p[4200];
    rec_path(j, key, p, sizeof p);
    if (unlink(p) != 0 && errno != ENOENT)
        return RDML_FAIL(ctx, RDML_EIO, "cannot remove journal record %s: %s", p, strerror(errno));
    return RDML_OK;
}

int rdml_journal_prune(rdml_ctx *ctx, const rdml_journal *j, const char *prefix, int64_t *removed) {
    *removed = 0;
    DIR *d = opendir(j->dir);
    if (!d)
        return RDML_FAIL(ctx, RDML_EIO, "cannot read the journal %s: %s", j->dir, strerror(errno));
    size_t plen = strlen(prefix);
    char p[4608], *key = malloc(plen + 1);
    if (!key) {
        closedir(d);
        return RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    }
    int rc = RDML_OK;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 4 || strcmp(e->d_name + n - 4, ".rec") != 0) continue;
        snprintf(p, sizeof p, "%s/%s", j->dir, e->d_name);
        FILE *f = fopen(p, "rb");
        if (!f) continue;
        char magic[8];
        uint64_t klen = 0;
        int match = fread(magic, 1, 8, f) == 8 && memcmp(magic, MAGIC, 8) == 0 &&
                    fread(&klen, 8, 1, f) == 1 && klen >= plen && fread(key, 1, plen, f) == plen &&
                    memcmp(key, prefix, plen) == 0;
        fclose(f);
        if (!match) continue;
        if (unlink(p) == 0) ++*removed;
        else if (errno != ENOENT)
            rc = RDML_FAIL(ctx, RDML_EIO, "cannot remove journal record %s: %s", p, strerror(errno));
    }
    closedir(d);
    free(key);
    return rc;
}

void rdml_journal_close(rdml_journal **j, MPI_Comm comm, int remove_dir) {
    if (!*j) return;
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    if (remove_dir) {
        MPI_Barrier(comm);
        if (rank == 0) rmdir((*j)->dir); /* fails harmlessly when records remain */
    }
    free(*j);
    *j = NULL;
}
