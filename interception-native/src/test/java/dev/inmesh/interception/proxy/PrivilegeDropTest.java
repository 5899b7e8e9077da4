package dev.inmesh.interception.proxy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The credentials check; the drop itself runs in the netns end-to-end test, in the proxy's own JVM. */
class PrivilegeDropTest {
    private static int idOfThisProcess(String field) throws Exception {
        for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (l.startsWith(field)) {
                return Integer.parseInt(l.substring(field.length()).trim().split("\\s+")[0]);
            }
        }
        throw new IllegalStateException(field);
    }

    @Test
    void everyThreadOfThisProcessRunsWithTheProcessCredentials() throws Exception {
        int uid = idOfThisProcess("Uid:");
        int gid = idOfThisProcess("Gid:");
        assertEquals(java.util.List.of(), PrivilegeDrop.threadsNotRunningAs(uid, gid));
        assertEquals(uid == 0, PrivilegeDrop.isRoot());
    }

    @Test
    void threadsWithOtherCredentialsAreNamed() throws Exception {
        int uid = idOfThisProcess("Uid:");
        var wrong = PrivilegeDrop.threadsNotRunningAs(uid + 4242, 4242);
        assertFalse(wrong.isEmpty());
        assertTrue(wrong.get(0).contains("Uid: " + uid), wrong.get(0));
    }
}
