package dev.inmesh.interception.proxy;

import com.sun.jna.Library;
import com.sun.jna.Native;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Drops root for the proxy's user (Istio's 1337) once the listeners are bound: supplementary groups, then the group,
 * then the user. Linux changes credentials per thread at the system call level, but glibc's {@code setuid},
 * {@code setgid} and {@code setgroups} apply the change to every thread of the process, which is why these are
 * libc calls (through JNA) and not raw system calls. {@link #threadsNotRunningAs} checks every thread afterwards.
 */
public final class PrivilegeDrop {
    private PrivilegeDrop() {}

    interface Libc extends Library {
        Libc INSTANCE = Native.load("c", Libc.class);

        int setgroups(long size, int[] list);

        int setgid(int gid);

        int setuid(int uid);

        int getuid();

        int geteuid();
    }

    /** Whether the process runs as root now. */
    public static boolean isRoot() {
        return Libc.INSTANCE.geteuid() == 0;
    }

    /**
     * Becomes {@code uid}:{@code gid} with {@code gid} as the only supplementary group, for every thread.
     *
     * @throws IllegalStateException with the errno of the call that failed
     */
    public static void to(int uid, int gid) {
        Libc libc = Libc.INSTANCE;
        group(gid);
        if (libc.setuid(uid) != 0) {
            throw new IllegalStateException("setuid(" + uid + ") failed, errno " + Native.getLastError());
        }
        List<String> wrong = threadsNotRunningAs(uid, gid);
        if (!wrong.isEmpty()) {
            throw new IllegalStateException("threads still running with other credentials: " + wrong);
        }
    }

    /**
     * Becomes group {@code gid} (its only supplementary group too), for every thread, while the user stays: root
     * keeps its capabilities, and the capture rules, which return the proxy group's traffic as they return its
     * user's, leave its connections alone.
     *
     * @throws IllegalStateException with the errno of the call that failed
     */
    public static void group(int gid) {
        Libc libc = Libc.INSTANCE;
        if (libc.setgroups(1, new int[] {gid}) != 0) {
            throw new IllegalStateException("setgroups(" + gid + ") failed, errno " + Native.getLastError());
        }
        if (libc.setgid(gid) != 0) {
            throw new IllegalStateException("setgid(" + gid + ") failed, errno " + Native.getLastError());
        }
    }

    /**
     * The threads of this process (from {@code /proc/self/task/* /status}) whose real, effective, saved or
     * filesystem UID or GID differ from the given ones, as {@code tid: Uid: ... Gid: ...}.
     */
    public static List<String> threadsNotRunningAs(int uid, int gid) {
        List<String> wrong = new ArrayList<>();
        try (DirectoryStream<Path> tasks = Files.newDirectoryStream(Path.of("/proc/self/task"))) {
            for (Path task : tasks) {
                List<String> lines;
                try {
                    lines = Files.readAllLines(task.resolve("status"));
                } catch (IOException e) {
                    continue; // the thread ended
                }
                String uids = field(lines, "Uid:");
                String gids = field(lines, "Gid:");
                if (!allEqual(uids, uid) || !allEqual(gids, gid)) {
                    wrong.add(task.getFileName() + ": Uid: " + uids + " Gid: " + gids);
                }
            }
        } catch (IOException e) {
            wrong.add("cannot read /proc/self/task: " + e.getMessage());
        }
        return wrong;
    }

    private static String field(List<String> lines, String name) {
        for (String l : lines) {
            if (l.startsWith(name)) {
                return l.substring(name.length()).trim();
            }
        }
        return "";
    }

    private static boolean allEqual(String ids, int id) {
        String[] parts = ids.split("\\s+");
        if (parts.length == 0 || ids.isEmpty()) {
            return false;
        }
        for (String p : parts) {
            if (!p.equals(Integer.toString(id))) {
                return false;
            }
        }
        return true;
    }
}
