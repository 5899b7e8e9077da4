package dev.inmesh.interception.install;

import dev.inmesh.interception.rules.IpFamily;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * The iptables commands of one family: {@code iptables}, {@code iptables-legacy} or {@code iptables-nft} (and the
 * {@code ip6tables} ones), with their {@code -save} and {@code -restore} companions.
 *
 * <p>{@link #detect} chooses as istio-iptables does, so that the rules go where the namespace's other rules are: the
 * legacy variant when it already holds rules there, else the nf_tables variant, else the unsuffixed command. The two
 * kernels' tables are separate; rules written with one are invisible to the other's {@code -save}, and NAT rules in
 * both at once race for the same connections.
 *
 * @param family   the address family
 * @param iptables the command, such as {@code iptables-nft}
 */
public record IptablesBinaries(IpFamily family, String iptables) {
    public IptablesBinaries {
        Objects.requireNonNull(family, "family");
        Objects.requireNonNull(iptables, "iptables");
    }

    /** The unsuffixed commands ({@code iptables}, {@code ip6tables}), whatever the system links them to. */
    public static IptablesBinaries plain(IpFamily family) {
        return new IptablesBinaries(family, family.iptables());
    }

    public String save() {
        return iptables + "-save";
    }

    public String restore() {
        return iptables + "-restore";
    }

    /**
     * Chooses the commands for one family in the namespace {@code runner} runs in: {@code -legacy} when its
     * {@code -save} lists a rule, else {@code -nft} when its {@code -save} runs, else the unsuffixed command when its
     * {@code -save} runs.
     *
     * @throws InstallException when none of the three can be run, naming what each said
     */
    public static IptablesBinaries detect(CommandRunner runner, IpFamily family) throws InstallException {
        return detect(runner, family, "");
    }

    /**
     * As {@link #detect(CommandRunner, IpFamily)}, unless {@code forced} is {@code legacy} or {@code nft}
     * (istio-iptables' --force-iptables-binary): then that variant, when its {@code -save} runs, else an error.
     */
    public static IptablesBinaries detect(CommandRunner runner, IpFamily family, String forced)
            throws InstallException {
        String base = family.iptables();
        if (forced.equals("legacy") || forced.equals("nft")) {
            IptablesBinaries chosen = new IptablesBinaries(family, base + "-" + forced);
            CommandRunner.Result save = runner.run(List.of(chosen.save()));
            if (!save.ok()) {
                throw new InstallException("no usable " + chosen.iptables() + " (--force-iptables-binary=" + forced
                        + "): " + failure(chosen.save(), save));
            }
            return chosen;
        }
        List<String> failures = new ArrayList<>();
        IptablesBinaries legacy = new IptablesBinaries(family, base + "-legacy");
        CommandRunner.Result legacySave = runner.run(List.of(legacy.save()));
        if (legacySave.ok() && holdsRules(legacySave.stdout())) {
            return legacy;
        }
        if (!legacySave.ok()) {
            failures.add(failure(legacy.save(), legacySave));
        }
        for (IptablesBinaries candidate : List.of(new IptablesBinaries(family, base + "-nft"), plain(family))) {
            CommandRunner.Result save = runner.run(List.of(candidate.save()));
            if (save.ok()) {
                return candidate;
            }
            failures.add(failure(candidate.save(), save));
        }
        throw new InstallException("no usable " + base + ": " + String.join("; ", failures));
    }

    /** What a command said, named once. */
    private static String failure(String command, CommandRunner.Result result) {
        String said = result.firstErrorLine();
        return said.contains(command) ? said : command + ": " + said;
    }

    /** True when iptables-save output has at least one rule (a table listed with empty chains holds none). */
    static boolean holdsRules(String save) {
        return save.lines().anyMatch(l -> l.startsWith("-A "));
    }
}
