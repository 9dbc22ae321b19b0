/* dockui-watch: the monitor's long-lived stage 2 in C (engine/container/monitor/watch.py `watch`, byte for byte).
 *
 * Why C: the Python stage costs ~2.6 MB of private memory for the interpreter alone, for every running
 * container; this one keeps tens of KB. Same protocol as the Python stage:
 *   argv: dockui-watch watch key=value ...   (MonitorContext.to_argv, engine/container/monitor/context.py)
 *   env:  DOCKUI_MONITOR_PYTHON = the interpreter for stage 3 (removed before exec'ing it)
 * Relays stdout/stderr (or the pty) into the json-file log and to an attached client (frames:
 * kind | 4-byte big-endian length | payload), stdin and window sizes from it, waits for the
 * container through a pidfd, then execs `python -S -m engine.container.monitor finish key=value ...` with the
 * context updated exactly as the Python stage updates it (exit, attach; out/err/pty/in/pid dropped).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define FRAME_STDIN 0
#define FRAME_STDOUT 1
#define FRAME_STDERR 2
#define FRAME_STDIN_EOF 3
#define FRAME_RESIZE 4
#define FRAME_ATTACHED 6
#define MAX_PARTIAL (16 * 1024)
#define READ_SIZE 65536

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* ------------------------------------------------------------------ context (ordered key=value) */

/* The MonitorContext fields this stage reads or writes (FIELDS in engine/container/monitor/context.py;
 * tests/test_monitor_native.py checks that each is one). Every other key passes through unchanged. */
#define KEY_PID "pid"
#define KEY_PTY "pty_fd"
#define KEY_IN "in_fd"
#define KEY_STDIN_ONCE "stdin_once"
#define KEY_OUT "out_fd"
#define KEY_ERR "err_fd"
#define KEY_ATTACH "attach_fd"
#define KEY_LISTEN "listen_fd"
#define KEY_LOG "log_path"
#define KEY_LOG_MAX_SIZE "log_max_size"
#define KEY_LOG_MAX_FILE "log_max_file"
#define KEY_EXIT "exit_code"

static char **ctx_keys, **ctx_values;
static int ctx_len;

static int ctx_find(const char *key) {
    for (int i = 0; i < ctx_len; i++)
        if (strcmp(ctx_keys[i], key) == 0) return i;
    return -1;
}

/* Python: int(ctx.get(key, -1)) */
static int ctx_fd(const char *key) {
    int i = ctx_find(key);
    return i < 0 ? -1 : atoi(ctx_values[i]);
}

/* Python dict assignment: in place when present, appended otherwise. */
static void ctx_set(const char *key, const char *value) {
    int i = ctx_find(key);
    if (i < 0) {
        i = ctx_len++;
        ctx_keys[i] = strdup(key);
    }
    ctx_values[i] = strdup(value);
}

static void ctx_pop(const char *key) {
    int i = ctx_find(key);
    if (i < 0) return;
    memmove(ctx_keys + i, ctx_keys + i + 1, (ctx_len - i - 1) * sizeof(char *));
    memmove(ctx_values + i, ctx_values + i + 1, (ctx_len - i - 1) * sizeof(char *));
    ctx_len--;
}

/* ------------------------------------------------------------------ io */

static int write_all(int fd, const char *data, size_t len) {
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return 0;
        }
        data += n;
        len -= (size_t)n;
    }
    return 1;
}

struct buf {
    char *data;
    size_t len, cap;
};

static void buf_put(struct buf *b, const char *data, size_t len) {
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len) cap *= 2;
        b->data = realloc(b->data, cap);
        if (!b->data) {
            perror("dockui-watch: realloc");
            _exit(1);
        }
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

/* ------------------------------------------------------------------ json-file log writer */

static int log_fd = -1;
static const char *log_path;
static long long log_size, log_max_size; /* bytes; max 0: never rotated */
static int log_max_file = 1;
static struct buf partial[2]; /* 0 stdout, 1 stderr */
static const char *stream_names[2] = {"stdout", "stderr"};

/* Length of a strictly valid UTF-8 sequence at p (as CPython's decoder accepts it), or 0. */
static size_t utf8_valid(const unsigned char *p, size_t n, uint32_t *cp) {
    unsigned char c = p[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        if (n < 2 || (p[1] & 0xC0) != 0x80) return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] > 0x9F) return 0; /* surrogates */
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] > 0x8F) return 0; /* above U+10FFFF */
        *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) | ((uint32_t)(p[2] & 0x3F) << 6) |
              (p[3] & 0x3F);
        return 4;
    }
    return 0;
}

static void put_u16(struct buf *out, uint32_t u) {
    char tmp[8];
    snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)u);
    buf_put(out, tmp, 6);
}

/* data.decode("utf-8", "surrogateescape") then _json.encode_basestring_ascii (quotes included). */
static void json_string(struct buf *out, const unsigned char *p, size_t n) {
    buf_put(out, "\"", 1);
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = utf8_valid(p + i, n - i, &cp);
        if (len == 0) { /* surrogateescape: each undecodable byte becomes U+DC80..U+DCFF */
            cp = 0xDC00 + p[i];
            len = 1;
        }
        i += len;
        if (cp >= ' ' && cp <= '~' && cp != '\\' && cp != '"') {
            char ch = (char)cp;
            buf_put(out, &ch, 1);
        } else if (cp == '\\') {
            buf_put(out, "\\\\", 2);
        } else if (cp == '"') {
            buf_put(out, "\\\"", 2);
        } else if (cp == '\b') {
            buf_put(out, "\\b", 2);
        } else if (cp == '\f') {
            buf_put(out, "\\f", 2);
        } else if (cp == '\n') {
            buf_put(out, "\\n", 2);
        } else if (cp == '\r') {
            buf_put(out, "\\r", 2);
        } else if (cp == '\t') {
            buf_put(out, "\\t", 2);
        } else if (cp >= 0x10000) {
            uint32_t v = cp - 0x10000;
            put_u16(out, 0xD800 | ((v >> 10) & 0x3FF));
            put_u16(out, 0xDC00 | (v & 0x3FF));
        } else {
            put_u16(out, cp);
        }
    }
    buf_put(out, "\"", 1);
}

/* LogWriter._rotate: path -> path.1 -> ... (max_file files in all), or emptied with max_file 1. */
static void log_rotate(void) {
    char from[4096], to[4096];
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC;
    if (log_fd >= 0) close(log_fd);
    if (log_max_file > 1) {
        for (int n = log_max_file - 1; n > 0; n--) {
            if (n > 1) snprintf(from, sizeof from, "%s.%d", log_path, n - 1);
            else snprintf(from, sizeof from, "%s", log_path);
            snprintf(to, sizeof to, "%s.%d", log_path, n);
            rename(from, to); /* a missing one: nothing to move */
        }
    } else {
        flags |= O_TRUNC;
    }
    log_fd = open(log_path, flags, 0640);
    if (log_fd < 0) perror("dockui-watch: cannot reopen the container's log");
    log_size = 0;
}

static void log_entry_raw(struct buf *out, int stream, const char *data, size_t n);

/* One entry appended to out; first, when it would take the file past max-size, what out holds
 * goes to the current file and the log is rotated (LogWriter._write). */
static void log_entry(struct buf *out, int stream, const char *data, size_t n) {
    size_t before = out->len;
    log_entry_raw(out, stream, data, n);
    size_t entry = out->len - before;
    if (log_max_size > 0 && log_size > 0 && log_size + (long long)entry > log_max_size) {
        if (before && log_fd >= 0) write_all(log_fd, out->data, before);
        memmove(out->data, out->data + before, entry);
        out->len = entry;
        log_rotate();
    }
    log_size += (long long)entry;
}

static void log_entry_raw(struct buf *out, int stream, const char *data, size_t n) {
    struct timespec ts;
    struct tm tm;
    char stamp[64];
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t secs = ts.tv_sec;
    gmtime_r(&secs, &tm);
    size_t len = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp + len, sizeof stamp - len, ".%09ldZ", (long)ts.tv_nsec);
    buf_put(out, "{\"log\":", 7);
    json_string(out, (const unsigned char *)data, n);
    buf_put(out, ",\"stream\":\"", 11);
    buf_put(out, stream_names[stream], 6);
    buf_put(out, "\",\"time\":\"", 10);
    buf_put(out, stamp, strlen(stamp));
    buf_put(out, "\"}\n", 3);
}

/* LogWriter.write: one entry per line, long lines in 16 KiB pieces, the rest kept for later. */
static void log_write(int stream, const char *data, size_t n) {
    struct buf *part = &partial[stream];
    buf_put(part, data, n);
    struct buf out = {0};
    const char *b = part->data;
    size_t len = part->len, start = 0;
    for (;;) {
        const char *nlp = memchr(b + start, '\n', len - start);
        if (!nlp) break;
        size_t nl = (size_t)(nlp - b);
        while (nl + 1 - start > MAX_PARTIAL) {
            log_entry(&out, stream, b + start, MAX_PARTIAL);
            start += MAX_PARTIAL;
        }
        log_entry(&out, stream, b + start, nl + 1 - start);
        start = nl + 1;
    }
    while (len - start >= MAX_PARTIAL) {
        log_entry(&out, stream, b + start, MAX_PARTIAL);
        start += MAX_PARTIAL;
    }
    memmove(part->data, b + start, len - start);
    part->len = len - start;
    if (out.len && log_fd >= 0) write_all(log_fd, out.data, out.len);
    free(out.data);
}

static void log_flush(void) {
    for (int s = 0; s < 2; s++) {
        if (partial[s].len) {
            struct buf out = {0};
            log_entry(&out, s, partial[s].data, partial[s].len);
            if (log_fd >= 0) write_all(log_fd, out.data, out.len);
            free(out.data);
            partial[s].len = 0;
        }
    }
}

/* ------------------------------------------------------------------ watch */

static int64_t monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll set in the Python stage's registration order: sources (pty, out, err), attach, pidfd. */
#define MAX_FDS 6
static struct pollfd pfds[MAX_FDS];
static int npfds;

static void poll_add(int fd) {
    pfds[npfds].fd = fd;
    pfds[npfds].events = POLLIN;
    pfds[npfds].revents = 0;
    npfds++;
}

static void poll_remove(int fd) {
    for (int i = 0; i < npfds; i++) {
        if (pfds[i].fd == fd) {
            memmove(pfds + i, pfds + i + 1, (npfds - i - 1) * sizeof(struct pollfd));
            npfds--;
            return;
        }
    }
}

static int watch(void) {
    static char data[READ_SIZE];
    static char frames[READ_SIZE + 5];
    struct buf reader = {0};
    int pid = ctx_fd(KEY_PID);
    int pty_fd = ctx_fd(KEY_PTY);
    int in_fd = ctx_fd(KEY_IN);
    /* Config.StdinOnce: a client's stdin EOF closes the container's stdin only then (absent: an
       older context, which closed it on every EOF). */
    int stdin_once_index = ctx_find(KEY_STDIN_ONCE);
    int stdin_once = stdin_once_index < 0 || strcmp(ctx_values[stdin_once_index], "0") != 0;
    int attach_fd = ctx_fd(KEY_ATTACH);
    int listen_fd = ctx_fd(KEY_LISTEN); /* `dockui attach` connects here */
    int log_index = ctx_find(KEY_LOG);
    if (log_index >= 0) {
        log_path = ctx_values[log_index];
        log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        int i = ctx_find(KEY_LOG_MAX_SIZE);
        if (i >= 0) log_max_size = atoll(ctx_values[i]);
        i = ctx_find(KEY_LOG_MAX_FILE);
        if (i >= 0 && atoi(ctx_values[i]) > 0) log_max_file = atoi(ctx_values[i]);
        struct stat st;
        if (log_fd >= 0 && fstat(log_fd, &st) == 0) log_size = st.st_size;
    }
    if (log_fd < 0) perror("dockui-watch: cannot open the container's log");
    int src_fd[3], src_stream[3], nsrc = 0;
    const char *src_keys[3] = {KEY_PTY, KEY_OUT, KEY_ERR};
    for (int k = 0; k < 3; k++) {
        int fd = ctx_fd(src_keys[k]);
        if (fd < 0) continue;
        int dup = 0;
        for (int j = 0; j < nsrc; j++)
            if (src_fd[j] == fd) { /* a dict keyed by fd: a later key overrides the stream */
                src_stream[j] = k == 2;
                dup = 1;
            }
        if (!dup) {
            src_fd[nsrc] = fd;
            src_stream[nsrc] = k == 2;
            nsrc++;
        }
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) pidfd = -1;
    for (int i = 0; i < nsrc; i++) poll_add(src_fd[i]);
    if (attach_fd >= 0) poll_add(attach_fd);
    if (pidfd >= 0) poll_add(pidfd);
    if (listen_fd >= 0) poll_add(listen_fd);
    int exited = pidfd < 0;
    int64_t drain_deadline = -1;
    while (nsrc > 0 || !exited) {
        int timeout = -1;
        if (exited) {
            /* Every writer died with the pid namespace; a stray fd holder gets 2 s, then we go on. */
            if (drain_deadline < 0) drain_deadline = monotonic_ms() + 2000;
            int64_t left = drain_deadline - monotonic_ms();
            timeout = left > 0 ? (int)left : 0;
            if (timeout == 0) break;
        }
        struct pollfd ready[MAX_FDS];
        int n = npfds;
        memcpy(ready, pfds, sizeof(struct pollfd) * (size_t)n);
        int got = poll(ready, (nfds_t)n, timeout);
        if (got < 0) {
            if (errno == EINTR) continue;
            perror("dockui-watch: poll");
            break;
        }
        for (int r = 0; r < n; r++) {
            if (!ready[r].revents) continue;
            int fd = ready[r].fd;
            if (fd == pidfd) {
                exited = 1;
                poll_remove(pidfd);
                continue;
            }
            if (fd == listen_fd) {
                int client = accept4(listen_fd, NULL, NULL, 0); /* inheritable: stage 3 sends it the exit */
                if (client < 0) continue;
                if (attach_fd >= 0) { /* one attached client at a time: this one sees EOF at once */
                    close(client);
                    continue;
                }
                attach_fd = client;
                poll_add(attach_fd);
                char hello[5] = {FRAME_ATTACHED, 0, 0, 0, 0};
                if (!write_all(attach_fd, hello, 5)) {
                    poll_remove(attach_fd);
                    close(attach_fd);
                    attach_fd = -1;
                }
                continue;
            }
            if (fd == attach_fd) {
                ssize_t got_bytes = read(attach_fd, data, READ_SIZE);
                if (got_bytes <= 0) {
                    poll_remove(attach_fd);
                    close(attach_fd);
                    attach_fd = -1; /* the client went away; keep logging (another may attach) */
                    reader.len = 0;
                    continue;
                }
                buf_put(&reader, data, (size_t)got_bytes);
                size_t off = 0;
                while (reader.len - off >= 5) {
                    const unsigned char *h = (const unsigned char *)reader.data + off;
                    uint32_t size = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 8) | h[4];
                    if (reader.len - off - 5 < size) break;
                    int kind = h[0];
                    const char *payload = reader.data + off + 5;
                    if (kind == FRAME_STDIN) {
                        int target = pty_fd >= 0 ? pty_fd : in_fd;
                        if (target >= 0) write_all(target, payload, size);
                    } else if (kind == FRAME_STDIN_EOF && in_fd >= 0 && stdin_once) {
                        close(in_fd);
                        in_fd = -1;
                    } else if (kind == FRAME_RESIZE && pty_fd >= 0 && size == 4) {
                        const unsigned char *p = (const unsigned char *)payload;
                        struct winsize ws = {0};
                        ws.ws_row = (unsigned short)((p[0] << 8) | p[1]);
                        ws.ws_col = (unsigned short)((p[2] << 8) | p[3]);
                        ioctl(pty_fd, TIOCSWINSZ, &ws);
                    }
                    off += 5 + size;
                }
                memmove(reader.data, reader.data + off, reader.len - off);
                reader.len -= off;
                continue;
            }
            ssize_t len = read(fd, data, READ_SIZE);
            if (len < 0) len = 0; /* EIO: the pty's last slave closed */
            int s = -1;
            for (int j = 0; j < nsrc; j++)
                if (src_fd[j] == fd) s = j;
            if (s < 0) continue;
            if (len == 0) {
                poll_remove(fd);
                memmove(src_fd + s, src_fd + s + 1, (size_t)(nsrc - s - 1) * sizeof(int));
                memmove(src_stream + s, src_stream + s + 1, (size_t)(nsrc - s - 1) * sizeof(int));
                nsrc--;
                close(fd);
                if (fd == pty_fd) pty_fd = -1;
                continue;
            }
            int stream = src_stream[s];
            log_write(stream, data, (size_t)len);
            if (attach_fd >= 0) {
                frames[0] = stream ? FRAME_STDERR : FRAME_STDOUT;
                frames[1] = (char)((len >> 24) & 0xFF);
                frames[2] = (char)((len >> 16) & 0xFF);
                frames[3] = (char)((len >> 8) & 0xFF);
                frames[4] = (char)(len & 0xFF);
                memcpy(frames + 5, data, (size_t)len);
                if (!write_all(attach_fd, frames, (size_t)len + 5)) {
                    poll_remove(attach_fd);
                    close(attach_fd);
                    attach_fd = -1;
                }
            }
        }
    }
    log_flush();
    if (log_fd >= 0) close(log_fd);
    if (pidfd >= 0) close(pidfd);
    for (int j = 0; j < nsrc; j++) close(src_fd[j]);
    int code, status;
    pid_t waited;
    do {
        waited = waitpid(pid, &status, 0);
    } while (waited < 0 && errno == EINTR);
    if (waited < 0)
        code = 255; /* not our child (should not happen): the exit status is unknown */
    else if (WIFSIGNALED(status))
        code = 128 + WTERMSIG(status);
    else
        code = WEXITSTATUS(status);
    char text[16];
    snprintf(text, sizeof text, "%d", code);
    ctx_set(KEY_EXIT, text);
    snprintf(text, sizeof text, "%d", attach_fd);
    ctx_set(KEY_ATTACH, text);
    const char *dropped[5] = {KEY_OUT, KEY_ERR, KEY_PTY, KEY_IN, KEY_PID};
    for (int k = 0; k < 5; k++) ctx_pop(dropped[k]);
    if (in_fd >= 0) close(in_fd);
    free(reader.data);
    return code;
}

int main(int argc, char **argv) {
    /* As in any Python process: a client that went away is EPIPE, not death. */
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2 || strcmp(argv[1], "watch") != 0) {
        fprintf(stderr, "usage: dockui-watch watch key=value ...\n");
        return 2;
    }
    const char *python = getenv("DOCKUI_MONITOR_PYTHON");
    if (!python || !*python) {
        fprintf(stderr, "dockui-watch: DOCKUI_MONITOR_PYTHON is not set\n");
        return 2;
    }
    char *python_copy = strdup(python);
    ctx_keys = calloc((size_t)argc + 4, sizeof(char *));
    ctx_values = calloc((size_t)argc + 4, sizeof(char *));
    for (int i = 2; i < argc; i++) { /* parse_kv: key=value, later duplicates win in place */
        char *eq = strchr(argv[i], '=');
        char *key = strndup(argv[i], eq ? (size_t)(eq - argv[i]) : strlen(argv[i]));
        ctx_set(key, eq ? eq + 1 : "");
        free(key);
    }
    watch();
    /* exec_stage("finish", ctx): the fds left in the context stay inheritable (they already are). */
    char **next = calloc((size_t)ctx_len + 6, sizeof(char *));
    int k = 0;
    next[k++] = python_copy;
    next[k++] = "-S";
    next[k++] = "-m";
    next[k++] = "engine.container.monitor";
    next[k++] = "finish";
    for (int i = 0; i < ctx_len; i++) {
        size_t len = strlen(ctx_keys[i]) + strlen(ctx_values[i]) + 2;
        next[k] = malloc(len);
        snprintf(next[k], len, "%s=%s", ctx_keys[i], ctx_values[i]);
        k++;
    }
    next[k] = NULL;
    unsetenv("DOCKUI_MONITOR_PYTHON");
    fflush(stdout);
    fflush(stderr);
    execv(python_copy, next);
    perror("dockui-watch: execv of the finish stage");
    return 1;
}
