package dev.inmesh.interception;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.inmesh.api.MeshOptions;
import dev.inmesh.runtime.accesslog.AccessLog;
import dev.inmesh.runtime.stats.TcpStreamInfo;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** {@code inmesh proxy --access-log}: the format the settings name, as the in-JVM mode's access log. */
class ProxyCommandTest {
    private final List<String> lines = new CopyOnWriteArrayList<>();

    @Test
    void theAccessLogIsJsonWhenTheSettingsSayJson() throws Exception {
        AccessLog log = ProxyCommand.accessLog(new MeshOptions().setAccessLogFormat(MeshOptions.AccessLogFormat.JSON),
                lines::add);
        assertEquals(AccessLog.Format.JSON, log.format());
        log.log(new TcpStreamInfo(null, Set.of(), 1, 2, 3, null, "c", null, "10.0.0.1:80", "10.0.0.2:4000", null));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
        while (lines.isEmpty() && System.nanoTime() < deadline) {
            Thread.sleep(10);
        }
        assertEquals(1, lines.size());
        assertTrue(lines.get(0).startsWith("{\"start_time\":null,"), lines.get(0));
    }

    @Test
    void theAccessLogIsIstiosTextFormatByDefault() {
        assertEquals(AccessLog.Format.TEXT, ProxyCommand.accessLog(new MeshOptions(), lines::add).format());
    }
}
