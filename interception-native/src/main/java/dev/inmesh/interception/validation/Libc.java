package dev.inmesh.interception.validation;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;

/** The few libc calls the probe needs (Linux). */
interface Libc extends Library {
    int AF_INET = 2;
    int SOCK_STREAM = 1;
    int SOCK_CLOEXEC = 0x80000;
    int SOL_SOCKET = 1;
    int SO_REUSEADDR = 2;
    int O_RDONLY = 0;
    int O_CLOEXEC = 0x80000;
    int CLONE_NEWNET = 0x40000000;
    short POLLIN = 1;

    Libc INSTANCE = Native.load("c", Libc.class);

    int socket(int domain, int type, int protocol);

    int setsockopt(int fd, int level, int name, Pointer value, int length);

    int bind(int fd, Pointer address, int length);

    int listen(int fd, int backlog);

    int accept(int fd, Pointer address, IntByReference length);

    int poll(Pointer fds, long count, int timeoutMillis);

    int close(int fd);

    int open(String path, int flags);

    int setns(int fd, int nstype);

    /** Sets the calling thread's filesystem UID (the one iptables' owner match sees); returns the previous one. */
    int setfsuid(int uid);

    int setfsgid(int gid);
}
