/* The lock on a results file (rdml/lock.h): an fcntl lock on "<path>.lock", taken by rank 0
 * and agreed across the ranks. The exclusive holder unlinks the lock file before it lets go,
 * so a contender that opened the old file and got its lock after the release finds that the
 * name now leads elsewhere (or nowhere) and starts over; the file left by a crashed holder is
 * simply reused (its lock died with it). */
#define _GNU_SOURCE /* F_OFD_SETLK */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rdml/lock.h"
#include "rdml/mpiutil.h"

struct rdml_lock {
    int fd;    /* rank 0: the open lock file, -1 elsewhere or without lock support */
    int mode;
    char *file;
};

/* fcntl with the open-file-description commands, the classic ones where the kernel lacks
 * them (EINVAL). */
static int lock_cmd(int fd, int cmd_ofd, int cmd_posix, struct flock *fl) {
#ifdef F_OFD_SETLK
    fl->l_pid = 0;
    int r = fcntl(fd, cmd_ofd, fl);
    if (r == 0 || errno != EINVAL) return r;
#else
    (void)cmd_ofd;
#endif
    return fcntl(fd, cmd_posix, fl);
}

#ifndef F_OFD_SETLK
#define F_OFD_SETLK F_SETLK
#define F_OFD_GETLK F_GETLK
#endif

/* The holder as written in the lock file: "host=..\npid=..\nsince=..\ncommand=..\n". */
static void describe_holder(int fd, short type, char *out, size_t len) {
    if (type == F_RDLCK) {
        snprintf(out, len, "shared by running `rdmlearn run --array` shares");
        return;
    }
    char buf[2048] = "", host[256] = "?", pid[32] = "?", since[64] = "?", cmd[1024] = "?";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n > 0) buf[n] = 0;
    for (char *sv = NULL, *ln = strtok_r(buf, "\n", &sv); ln; ln = strtok_r(NULL, "\n", &sv)) {
        if (!strncmp(ln, "host=", 5)) snprintf(host, sizeof host, "%s", ln + 5);
        else if (!strncmp(ln, "pid=", 4)) snprintf(pid, sizeof pid, "%s", ln + 4);
        else if (!strncmp(ln, "since=", 6)) snprintf(since, sizeof since, "%s", ln + 6);
        else if (!strncmp(ln, "command=", 8)) snprintf(cmd, sizeof cmd, "%s", ln + 8);
    }
    if (n <= 0)
        snprintf(out, len, "held by another process that has not yet recorded who it is");
    else
        snprintf(out, len, "held by `%s` (PID %s on host %s, since %s)", cmd, pid, host, since);
}

/* Rank 0: one attempt. 0: locked (*fdp set); 1: held by another (msg set); -1: error (ctx);
 * 2: the lock file was replaced under us, try again; 3: no lock support (msg set). */
static int try_lock(rdml_ctx *ctx, const char *file, int mode, int *fdp, char *msg, size_t len) {
    *fdp = -1;
    int fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0 && errno == EACCES && mode == RDML_LOCK_SHARED) fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        RDML_FAIL(ctx, RDML_EIO, "cannot create the lock file %s: %s (hint: the folder must "
                  "exist and be writable; check run.output)", file, strerror(errno));
        return -1;
    }
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = mode == RDML_LOCK_SHARED ? F_RDLCK : F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (lock_cmd(fd, F_OFD_SETLK, F_SETLK, &fl) != 0) {
        int err = errno;
        if (err == EAGAIN || err == EACCES) {
            struct flock q;
            memset(&q, 0, sizeof q);
            q.l_type = F_WRLCK;
            q.l_whence = SEEK_SET;
            short type = F_WRLCK;
            if (lock_cmd(fd, F_OFD_GETLK, F_GETLK, &q) == 0 && q.l_type != F_UNLCK) type = q.l_type;
            describe_holder(fd, type, msg, len);
            close(fd);
            return 1;
        }
        close(fd);
        if (err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS) {
            snprintf(msg, len, "%s", strerror(err));
            return 3;
        }
        RDML_FAIL(ctx, RDML_EIO, "cannot lock %s: %s", file, strerror(err));
        return -1;
    }
    /* the previous holder may have unlinked the file between our open and our lock */
    struct stat a, b;
    if (fstat(fd, &a) != 0 || stat(file, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
        close(fd);
        return 2;
    }
    *fdp = fd;
    return 0;
}

/* Rank 0: record who holds the exclusive lock. */
static void write_holder(int fd, const char *what) {
    char host[256] = "?", since[64], buf[2048];
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    time_t now = time(NULL);
    strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    int n = snprintf(buf, sizeof buf, "host=%s\npid=%ld\nsince=%s\ncommand=%s\n", host,
                     (long)getpid(), since, what ? what : "rdmlearn");
    if (n < 0) return;
    if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
    if (ftruncate(fd, 0) == 0 && pwrite(fd, buf, (size_t)n, 0) == n) fsync(fd);
}

int rdml_lock_acquire(rdml_ctx *ctx, MPI_Comm comm, const char *path, int mode, const char *what,
                      rdml_lock **out) {
    *out = NULL;
    int rank = 0;
    MPI_Comm_rank(comm, &rank);
    rdml_lock *lk = calloc(1, sizeof *lk);
    int rc = RDML_OK;
    if (lk) {
        lk->fd = -1;
        lk->mode = mode;
        lk->file = malloc(strlen(path) + 8);
        if (lk->file) sprintf(lk->file, "%s.lock", path);
    }
    if (!lk || !lk->file) rc = RDML_FAIL(ctx, RDML_ENOMEM, "out of memory");
    rc = rdml_agree(ctx, comm, rc);
    if (!rc && rank == 0) {
        char msg[1600] = "";
        int r = 2;
        /* a holder that has just died may still be releasing: up to 2 s, every 100 ms */
        for (int attempt = 0; attempt < 20 && r != 0 && r != -1 && r != 3; attempt++) {
            if (attempt) nanosleep(&(struct timespec){0, 100000000L}, NULL);
            do r = try_lock(ctx, lk->file, mode, &lk->fd, msg, sizeof msg);
            while (r == 2);
        }
        if (r == -1) rc = ctx->code;
        else if (r == 1)
            rc = RDML_FAIL(ctx, RDML_EIO, "%s is in use: %s; lock file %s (hint: wait until that "
                           "command has finished, or give this job its own run.output; a command "
                           "that crashed holds no lock, so there is nothing to delete)", path, msg,
                           lk->file);
        else if (r == 3)
            rdml_warn(ctx, "cannot lock %s (%s): the file system does not support locks, so "
                      "nothing stops two commands from writing %s at once", lk->file, msg, path);
        else if (mode == RDML_LOCK_EXCLUSIVE)
            write_holder(lk->fd, what);
    }
    if (rdml_root_status(ctx, comm, rc)) {
        rdml_lock_release(&lk);
        return ctx->code;
    }
    *out = lk;
    return RDML_OK;
}

void rdml_lock_release(rdml_lock **lkp) {
    if (!lkp || !*lkp) return;
    rdml_lock *lk = *lkp;
    *lkp = NULL;
    if (lk->fd >= 0) {
        /* only an exclusive holder may remove the file: shared holders may be several */
        if (lk->mode == RDML_LOCK_EXCLUSIVE) unlink(lk->file);
        close(lk->fd); /* releases the lock */
    }
    free(lk->file);
    free(lk);
}
