/*
 * Chorus's native forker: starts the processes of src/process/forker.ts (which documents the protocol) without perl
 * and, for most of them, without the /bin/sh shim. Built by native/build.js when a C compiler is present; Chorus
 * falls back to the perl forker and the sh shim when it is not.
 *
 * It reads framed requests on stdin (a 4-byte big-endian length, then NUL-separated fields: mode, cwd, stdout log,
 * stderr log, exit file, argc, argv, then the environment as K=V) and answers each with a line: the pid, or
 * `E <why>`. Mode `topdir` (fields: mode, a directory) marks a directory for the allocator and answers `ok`. Each child leads a new session before the answer is written. Then, like the perl forker's child, it
 * resets every signal to its default, opens its two logs for appending (0600), takes /dev/null as stdin, enters its
 * directory, closes every other descriptor and exits if the forker died before answering. In mode `exec` it execs
 * argv (the sh shim, or any program) with exactly the environment sent. In mode `shim` the child is the shim itself,
 * as the sh shim would be without its exec: it catches every catchable signal with a handler (a signal sent to its
 * group never ends it, and the command inherits no ignored signal), runs argv in a child of its own (found on the
 * sent PATH), waits for it, and writes its status (the code, or 128 + the signal) to the exit file, through a
 * temporary file renamed over it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* Said in the ready line; src/process/forker.ts refuses a binary built from another version of this file. */
#define PROTOCOL "3"
/* No request of Chorus comes near this (a command is at most 16 KiB, plus its environment). */
#define MAX_REQUEST (64u << 20)

extern char **environ;

static pid_t forker;

static int read_full(int fd, void *buffer, size_t size) {
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, (char *)buffer + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const char *text, size_t size) {
  while (size > 0) {
    ssize_t w = write(fd, text, size);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    text += w;
    size -= (size_t)w;
  }
  return 0;
}

/* One line to the supervisor; the forker ends when nobody reads its answers any more. */
static void answer(const char *format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  int n = vsnprintf(line, sizeof line - 1, format, args);
  va_end(args);
  if (n < 0) n = 0;
  if ((size_t)n > sizeof line - 2) n = (int)sizeof line - 2;
  line[n] = '\n';
  if (write_full(STDOUT_FILENO, line, (size_t)n + 1) != 0) exit(0);
}

static void write_exit_file(const char *path, int code) {
  size_t length = strlen(path);
  char *temporary = malloc(length + 5);
  if (!temporary) return;
  memcpy(temporary, path, length);
  memcpy(temporary + length, ".tmp", 5);
  /* A fresh file, never through a link someone left in the run directory (unlink removes the link, not its target). */
  unlink(temporary);
  int fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (fd >= 0) {
    char text[16];
    int n = snprintf(text, sizeof text, "%d\n", code);
    int written = write_full(fd, text, (size_t)n);
    if (close(fd) == 0 && written == 0) rename(temporary, path);
  }
  free(temporary);
}

/* A child that cannot be set up: the reason in its stderr (the log once it is open), 127 in its exit file. */
static void fail(const char *exit_file, const char *what, const char *subject) {
  int error = errno;
  dprintf(STDERR_FILENO, "chorus: %s%s%s: %s\n", what, subject ? " " : "", subject ? subject : "", strerror(error));
  write_exit_file(exit_file, 127);
  _exit(127);
}

static void close_from_3(void) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3u, ~0u, 0u) == 0) return;
#endif
  /* Kernels before 5.9: what /proc says is open, closed once the listing is done, until a listing finds none. */
  for (size_t count = 1; count > 0;) {
    DIR *listing = opendir("/proc/self/fd");
    if (!listing) return;
    int open_fds[1024];
    int own = dirfd(listing);
    count = 0;
    for (struct dirent *entry; (entry = readdir(listing)) != NULL && count < 1024;) {
      char *end;
      long fd = strtol(entry->d_name, &end, 10);
      if (*end == '\0' && end != entry->d_name && fd > 2 && fd != own) open_fds[count++] = (int)fd;
    }
    closedir(listing);
    for (size_t k = 0; k < count; k += 1) close(open_fds[k]);
  }
}

static void default_signals(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  for (int signal_number = 1; signal_number < NSIG; signal_number += 1) sigaction(signal_number, &action, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * The shim's handler: a signal sent to its group is for its command, not for it. A fault of its own (a kernel-sent
 * SIGSEGV and the like, si_code > 0) gets its default action back, so the faulting instruction ends it, not a loop.
 */
static void on_signal(int signal_number, siginfo_t *info, void *context) {
  (void)context;
  int is_fault = signal_number == SIGSEGV || signal_number == SIGBUS || signal_number == SIGILL || signal_number == SIGFPE
    || signal_number == SIGTRAP || signal_number == SIGSYS;
  if (is_fault && info != NULL && info->si_code > 0) signal(signal_number, SIG_DFL);
}

/* The command's status as a shell's $? says it: its code, or 128 + the signal that ended it. */
static int status_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

/*
 * The program execvp would run first for `name`: the first regular file on the environment's PATH that can be
 * executed (an empty entry is the current directory, as for execvp). Into `found`; 0 when there is none or no PATH.
 */
static int find_on_path(const char *name, char **env, char *found, size_t size) {
  const char *path = NULL;
  for (char **entry = env; *entry != NULL; entry += 1) {
    if (strncmp(*entry, "PATH=", 5) == 0) path = *entry + 5;
  }
  if (path == NULL || strchr(name, '/') != NULL || *name == '\0') return 0;
  for (const char *at = path;;) {
    const char *colon = strchrnul(at, ':');
    size_t length = (size_t)(colon - at);
    int n = length == 0 ? snprintf(found, size, "%s", name) : snprintf(found, size, "%.*s/%s", (int)length, at, name);
    struct stat info;
    if (n > 0 && (size_t)n < size && stat(found, &info) == 0 && S_ISREG(info.st_mode) && access(found, X_OK) == 0) return 1;
    if (*colon == '\0') return 0;
    at = colon + 1;
  }
}

/*
 * The command started without a copy of the shim's memory (posix_spawn: a vfork-like clone, then exec), with every
 * signal at its default and none blocked: what fork, default_signals and execvp do, for less CPU (no page tables to
 * copy, no copy-on-write faults, no memory to tear down at the exec, no failed execs along PATH). The program is the
 * one execvp would find first. -1 when that cannot be done (not found, not a binary the kernel runs, no resources):
 * then fork and execvp run it, or say why it cannot run, exactly as before.
 */
static pid_t spawn_found(char **argv, char **env) {
  char found[4096];
  const char *program = argv[0];
  if (strchr(program, '/') == NULL) {
    if (!find_on_path(program, env, found, sizeof found)) return -1;
    program = found;
  }
  posix_spawnattr_t attributes;
  if (posix_spawnattr_init(&attributes) != 0) return -1;
  sigset_t all, none;
  /* Every bit, not sigfillset: glibc's leaves out its two internal signals, which its child would then set to ignored. */
  memset(&all, 0xff, sizeof all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int error = posix_spawn(&pid, program, NULL, &attributes, argv, env);
  posix_spawnattr_destroy(&attributes);
  return error == 0 ? pid : -1;
}

static void run_as_shim(char **argv, char **env, const char *exit_file) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_signal;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  for (int signal_number = 1; signal_number < NSIG; signal_number += 1) {
    if (signal_number == SIGKILL || signal_number == SIGSTOP || signal_number == SIGCHLD) continue;
    sigaction(signal_number, &action, NULL); /* the C library's own real-time signals refuse: they stay default */
  }
  pid_t command = spawn_found(argv, env);
  if (command < 0) command = fork();
  if (command < 0) fail(exit_file, "cannot fork", NULL);
  if (command == 0) {
    /* A handled signal is reset to its default by exec; until then this child must not run the handler's no-op. */
    default_signals();
    environ = env;
    execvp(argv[0], argv);
    int error = errno;
    dprintf(STDERR_FILENO, "chorus: cannot run %s: %s\n", argv[0], strerror(error));
    _exit(error == ENOENT || error == ENOTDIR ? 127 : 126);
  }
  int status = 0;
  while (waitpid(command, &status, 0) < 0) {
    if (errno != EINTR) {
      status = 1 << 8;
      break;
    }
  }
  int code = status_code(status);
  write_exit_file(exit_file, code);
  _exit(code);
}

static void child(int is_shim, const char *cwd, const char *out, const char *err, const char *exit_file, char **argv, char **env, int sync_fd) {
  setsid();
  close(sync_fd); /* the answer may go: the child leads its own session */
  default_signals();
  int fd = open(err, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) fail(exit_file, "cannot open", err);
  if (dup2(fd, STDERR_FILENO) < 0) fail(exit_file, "cannot redirect stderr", NULL);
  fd = open(out, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) fail(exit_file, "cannot open", out);
  if (dup2(fd, STDOUT_FILENO) < 0) fail(exit_file, "cannot redirect stdout", NULL);
  fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || dup2(fd, STDIN_FILENO) < 0) fail(exit_file, "cannot open", "/dev/null");
  if (chdir(cwd) != 0) fail(exit_file, "cannot enter", cwd);
  close_from_3();
  if (getppid() != forker) _exit(127);
  if (is_shim) run_as_shim(argv, env, exit_file);
  environ = env;
  execvp(argv[0], argv);
  fail(exit_file, "cannot run", argv[0]);
}

/*
 * Marks a directory as the top of a directory hierarchy for ext2/3/4's Orlov allocator (chattr +T): each directory
 * made in it goes to a block group with free inodes, not beside its parent. Without a journal, ext4 passes over every
 * inode deleted in the last minute (six while its table is dirty) each time it allocates one in a group, which made
 * a run directory and its two logs cost up to 3.6 ms of CPU instead of 0.3 right after thousands were deleted.
 */
static void mark_top_directory(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    answer("E cannot open %s: %s", path, strerror(errno));
    return;
  }
  int flags = 0;
  int failed = ioctl(fd, FS_IOC_GETFLAGS, &flags); /* tmpfs, xfs and most others: ENOTTY or EOPNOTSUPP */
  if (!failed && !(flags & FS_TOPDIR_FL)) {
    flags |= FS_TOPDIR_FL;
    failed = ioctl(fd, FS_IOC_SETFLAGS, &flags);
  }
  if (failed) answer("E %s: %s", path, strerror(errno));
  else answer("ok");
  close(fd);
}

static void serve(char *body, uint32_t size) {
  size_t fields = 1;
  for (uint32_t k = 0; k < size; k += 1) fields += body[k] == '\0';
  char **field = calloc(fields + 2, sizeof *field); /* room for the NULL after argv and after the environment */
  if (!field) {
    answer("E out of memory");
    return;
  }
  char *at = body;
  for (size_t k = 0; k < fields; k += 1) {
    field[k] = at;
    at += strlen(at) + 1;
  }
  if (fields == 2 && strcmp(field[0], "topdir") == 0) {
    mark_top_directory(field[1]);
    free(field);
    return;
  }
  char *end;
  long argc = fields > 5 ? strtol(field[5], &end, 10) : 0;
  int is_shim = fields > 0 && strcmp(field[0], "shim") == 0;
  int is_exec = fields > 0 && strcmp(field[0], "exec") == 0;
  if (fields < 7 || (!is_shim && !is_exec) || *end != '\0' || argc < 1 || (size_t)argc > fields - 6) {
    free(field);
    answer("E malformed request");
    return;
  }
  char **argv = field + 6;
  char **env = argv + argc + 1;
  /* argv ends with a NULL where the environment began: the environment moves up by one. */
  memmove(env, argv + argc, (fields - 6 - (size_t)argc) * sizeof *field);
  argv[argc] = NULL;
  env[fields - 6 - (size_t)argc] = NULL;
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) != 0) {
    answer("E pipe: %s", strerror(errno));
    free(field);
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    int error = errno;
    close(sync[0]);
    close(sync[1]);
    free(field);
    answer("E fork: %s", strerror(error));
    return;
  }
  if (pid == 0) {
    close(sync[0]);
    child(is_shim, field[1], field[2], field[3], field[4], argv, env, sync[1]);
  }
  close(sync[1]);
  char byte;
  while (read(sync[0], &byte, 1) < 0 && errno == EINTR) {
  }
  close(sync[0]);
  free(field);
  answer("%d", (int)pid);
}

int main(void) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  sigemptyset(&action.sa_mask);
  action.sa_handler = SIG_IGN;
  /* Children are reaped by the kernel; the supervisor's own signals (a Ctrl-C to its group) are not for the forker. */
  const int ignored[] = {SIGCHLD, SIGINT, SIGHUP, SIGQUIT, SIGPIPE, SIGTERM};
  for (size_t k = 0; k < sizeof ignored / sizeof *ignored; k += 1) sigaction(ignored[k], &action, NULL);
  forker = getpid();
  answer("ready native " PROTOCOL);
  for (;;) {
    unsigned char header[4];
    if (read_full(STDIN_FILENO, header, 4) != 0) return 0;
    uint32_t size = ((uint32_t)header[0] << 24) | ((uint32_t)header[1] << 16) | ((uint32_t)header[2] << 8) | header[3];
    if (size > MAX_REQUEST) return 1;
    char *body = malloc((size_t)size + 1);
    if (!body) return 1;
    if (read_full(STDIN_FILENO, body, size) != 0) return 0;
    body[size] = '\0';
    serve(body, size);
    free(body);
  }
}
