package dev.inmesh.interception.install;

import dev.inmesh.interception.rules.CaptureConfig;
import dev.inmesh.interception.rules.InterceptionMode;
import dev.inmesh.interception.rules.IpFamily;
import dev.inmesh.interception.rules.Rule;
import dev.inmesh.interception.rules.RuleGenerator;
import dev.inmesh.interception.rules.RuleSet;
import dev.inmesh.interception.rules.Table;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * Applies one configuration's rules, checks whether they are already in place, and removes them.
 *
 * <p>Install is idempotent: when our chains exist and hold exactly this configuration's rules, nothing changes; when
 * they hold something else, they are replaced (reconcile; TCP and UDP are dropped in the filter table meanwhile, as
 * by istio-iptables' guardrails) or the install refuses. When a step fails, everything the
 * install had applied is removed again before the error is reported.
 *
 * <p>Clean-up removes our chains ({@code ISTIO_*}) in every table, every jump into them from the built-in chains,
 * the other rules this configuration puts into built-in chains in either interception mode, and the TPROXY policy
 * route, for IPv6 too when ip6tables holds ISTIO_ chains of an earlier install. Other rules stay.
 */
public final class RuleInstaller {
    /** Bounds the loops that delete a rule until none is left (duplicates from earlier installs). */
    private static final int MAX_DUPLICATES = 16;
    private static final String PASSTHROUGH_V6 = "::6/128";

    private final CommandRunner runner;
    private final CaptureConfig config;
    private final RuleSet rules;
    private final Consumer<String> log;
    private final Map<IpFamily, IptablesBinaries> binaries = new EnumMap<>(IpFamily.class);
    /** The comment that marks the rules dropping traffic while the rules are replaced ({@link #addGuardrails}). */
    static final String GUARDRAIL_COMMENT = "inmesh-guardrail";
    private static final List<String> GUARDRAIL_CHAINS = List.of("INPUT", "FORWARD", "OUTPUT");

    /** What an install did. */
    public enum Outcome {
        /** The rules were not there and now are. */
        APPLIED,
        /** The same rules were already there; nothing changed. */
        UNCHANGED,
        /** Different ISTIO_ rules were there; they were removed and this configuration's rules applied. */
        RECONCILED
    }

    /** Runs the unsuffixed commands ({@code iptables}, {@code ip6tables}). */
    public RuleInstaller(CommandRunner runner, CaptureConfig config, RuleSet rules, Consumer<String> log) {
        this(runner, config, rules, log, List.of());
    }

    /**
     * Runs the given commands for their families (see {@link IptablesBinaries#detect}); a family not given runs the
     * unsuffixed ones.
     */
    public RuleInstaller(CommandRunner runner, CaptureConfig config, RuleSet rules, Consumer<String> log,
                         List<IptablesBinaries> binaries) {
        this.runner = Objects.requireNonNull(runner, "runner");
        this.config = Objects.requireNonNull(config, "config");
        this.rules = Objects.requireNonNull(rules, "rules");
        this.log = Objects.requireNonNull(log, "log");
        for (IpFamily f : IpFamily.values()) {
            this.binaries.put(f, IptablesBinaries.plain(f));
        }
        binaries.forEach(b -> this.binaries.put(b.family(), b));
    }

    /** The families this configuration touches: IPv4, and IPv6 when enabled. */
    public List<IpFamily> families() {
        return families(config);
    }

    /** The families a configuration touches: IPv4, and IPv6 when enabled. */
    public static List<IpFamily> families(CaptureConfig config) {
        return config.enableIpv6() ? List.of(IpFamily.V4, IpFamily.V6) : List.of(IpFamily.V4);
    }

    /** What a dry run prints: the iptables-restore input, IPv4 first, then IPv6 when enabled. */
    public String dryRunText() {
        StringBuilder sb = new StringBuilder();
        for (IpFamily f : families()) {
            sb.append(rules.restoreInput(f));
        }
        return sb.toString();
    }

    /** Every step an install runs, in order. */
    public List<Step> applySteps() {
        List<Step> steps = new ArrayList<>(iptablesSteps());
        steps.addAll(routeSteps());
        return steps;
    }

    private List<Step> iptablesSteps() {
        List<Step> steps = new ArrayList<>();
        for (IpFamily f : families()) {
            String input = rules.restoreInput(f);
            if (!input.isEmpty()) {
                String restore = binaries.get(f).restore();
                steps.add(new Step(restore + " --noflush (" + label(f) + " rules)",
                        List.of(restore, "--noflush"), input, false));
            }
        }
        return steps;
    }

    /** The steps besides iptables: the IPv6 passthrough source address and the TPROXY policy route. */
    private List<Step> routeSteps() {
        List<Step> steps = new ArrayList<>();
        if (config.enableIpv6()) {
            // IPv6 lo only carries ::1/128; the proxy needs ::6 to bind its passthrough connections to.
            steps.add(new Step("add " + PASSTHROUGH_V6 + " to lo",
                    List.of("ip", "-6", "addr", "add", PASSTHROUGH_V6, "dev", "lo"), null, true));
        }
        // As istio-iptables: the policy route only serves inbound capture, so without inbound ports there is none.
        CaptureConfig.PortSelection inbound = config.inboundPorts();
        if (config.interceptionMode() == InterceptionMode.TPROXY && (inbound.all() || !inbound.ports().isEmpty())) {
            String mark = Long.toString(config.inboundTproxyMark());
            String table = Long.toString(config.inboundTproxyRouteTable());
            for (IpFamily f : families()) {
                steps.add(new Step("route packets marked " + mark + " through table " + table + " (" + label(f) + ")",
                        List.of("ip", "-f", f.ipFamilyName(), "rule", "add", "fwmark", mark, "lookup", table),
                        null, true,
                        List.of("ip", "-f", f.ipFamilyName(), "rule", "show", "fwmark", mark, "lookup", table)));
                steps.add(new Step("deliver table " + table + " locally via lo (" + label(f) + ")",
                        List.of("ip", "-f", f.ipFamilyName(), "route", "replace", "local", "default", "dev", "lo",
                                "table", table), null, true));
            }
        }
        return steps;
    }

    /**
     * Installs the rules.
     *
     * @param reconcile replace ISTIO_ rules that differ from this configuration; when false such rules make the
     *                  install fail without changing anything
     */
    public Outcome install(boolean reconcile) throws InstallException {
        // an earlier install stopped while it reconciled (killed, or it could not remove them) would cut us off
        removeGuardrails();
        Map<IpFamily, IptablesState> before = new EnumMap<>(IpFamily.class);
        boolean present = false;
        for (IpFamily f : families()) {
            IptablesState state = save(f);
            before.put(f, state);
            present |= state.hasIstioChains();
        }
        boolean leftovers = !leftoverFamilies().isEmpty();
        if (present || leftovers) {
            boolean same = !leftovers;
            for (IpFamily f : families()) {
                same &= matches(f, before.get(f));
            }
            if (same) {
                log.accept("iptables: the rules are already in place; nothing to change");
                runSteps(routeSteps(), false);
                return Outcome.UNCHANGED;
            }
            if (!reconcile) {
                throw new InstallException("ISTIO_ chains already exist and hold other rules than this configuration;"
                        + " nothing was changed (run with --reconcile to replace them, or --cleanup-only first)");
            }
            log.accept("iptables: existing ISTIO_ rules differ from this configuration; replacing them"
                    + " (TCP and UDP are dropped meanwhile)");
            Throwable failed = null;
            try {
                addGuardrails();
                cleanupRules();
                runSteps(applySteps(), true);
                verify();
            } catch (InstallException | RuntimeException | Error e) {
                failed = e;
                throw e;
            } finally {
                removeGuardrails(failed);
            }
            return Outcome.RECONCILED;
        }
        runSteps(applySteps(), true);
        verify();
        return Outcome.APPLIED;
    }

    /**
     * Applies the rules without comparing them with what is installed (istio-iptables' --force-apply, its way around
     * its own idempotency checks). With ISTIO_ chains already there istio-iptables' iptables-restore fails, as it
     * cannot create them again; this fails before it, so that the rollback of a failed step cannot remove rules
     * this run did not add. Nothing is changed then.
     */
    public Outcome forceApply() throws InstallException {
        for (IpFamily f : families()) {
            if (save(f).hasIstioChains()) {
                throw new InstallException("--force-apply: ISTIO_ chains already exist (" + label(f) + "); nothing"
                        + " was changed (istio-iptables fails there too: run --cleanup-only first)");
            }
        }
        runSteps(applySteps(), true);
        verify();
        return Outcome.APPLIED;
    }

    /**
     * As istio-iptables' guardrails while it reconciles: drops TCP and UDP in the filter table's INPUT, FORWARD and
     * OUTPUT chains so that nothing passes uncaptured between removing the old rules and applying the new ones. Each
     * carries the comment {@value #GUARDRAIL_COMMENT}, so that {@link #removeGuardrails} removes these and never a
     * rule of the namespace's own that drops alike.
     */
    private void addGuardrails() throws InstallException {
        for (IpFamily f : families()) {
            for (String chain : GUARDRAIL_CHAINS) {
                for (String protocol : List.of("tcp", "udp")) {
                    List<String> insert = guardrail(f, "-I", chain, protocol);
                    CommandRunner.Result result = runner.run(insert);
                    if (!result.ok()) {
                        throw new InstallException("cannot drop traffic while the rules are replaced: `"
                                + String.join(" ", insert) + "` exited " + result.exitCode() + ": "
                                + result.firstErrorLine() + "; nothing was changed");
                    }
                }
            }
        }
    }

    /** The command that inserts ({@code -I}, first in the chain) or deletes ({@code -D}) one guardrail. */
    private List<String> guardrail(IpFamily f, String operation, String chain, String protocol) {
        List<String> command = new ArrayList<>(List.of(iptables(f), "-t", "filter", operation, chain));
        if (operation.equals("-I")) {
            command.add("1");
        }
        command.addAll(List.of("-p", protocol, "-m", "comment", "--comment", GUARDRAIL_COMMENT, "-j", "DROP"));
        return command;
    }

    private void removeGuardrails() throws InstallException {
        removeGuardrails(null);
    }

    /**
     * Removes every guardrail ({@link #addGuardrails}) in the families of this configuration: those of this install,
     * and those an earlier one left when it was stopped meanwhile.
     *
     * @param failed what made the install fail, kept with the error when a guardrail stays; null when nothing did
     * @throws InstallException when one stays in place (the namespace's TCP and UDP are still dropped), naming the
     *                          commands that remove them, or when the rules cannot be read
     */
    private void removeGuardrails(Throwable failed) throws InstallException {
        List<String> left = new ArrayList<>();
        for (IpFamily f : families()) {
            if (!saveOutput(f).contains(GUARDRAIL_COMMENT)) {
                continue;
            }
            for (String chain : GUARDRAIL_CHAINS) {
                for (String protocol : List.of("tcp", "udp")) {
                    deleteRepeatedly(guardrail(f, "-D", chain, protocol));
                }
            }
            saveOutput(f).lines().filter(l -> l.startsWith("-A ") && l.contains(GUARDRAIL_COMMENT))
                    .forEach(l -> left.add(iptables(f) + " -t filter -D" + l.substring(2)));
        }
        if (!left.isEmpty()) {
            InstallException e = new InstallException("TCP and UDP are still dropped: the DROP rules added while"
                    + " the rules were replaced could not be removed; remove them with `" + String.join("`, `", left)
                    + "`, or run inmesh iptables again" + (failed == null ? "" : " (" + failed.getMessage() + ")"));
            if (failed != null) {
                e.addSuppressed(failed);
            }
            throw e;
        }
    }

    private void runSteps(List<Step> steps, boolean rollbackOnFailure) throws InstallException {
        for (int i = 0; i < steps.size(); i++) {
            Step step = steps.get(i);
            if (step.presence() != null) {
                CommandRunner.Result present = runner.run(step.presence());
                if (present.ok() && !present.stdout().isBlank()) {
                    continue;
                }
            }
            CommandRunner.Result result = runner.run(step.command(), step.stdin());
            if (step.succeeded(result)) {
                continue;
            }
            String failure = "step " + (i + 1) + " of " + steps.size() + " failed: " + step.description()
                    + " (`" + step + "` exited " + result.exitCode() + ": " + result.firstErrorLine() + ")";
            if (rollbackOnFailure) {
                rollback(failure);
            }
            throw new InstallException(failure);
        }
    }

    private void rollback(String failure) throws InstallException {
        log.accept("iptables: " + failure + "; removing what was applied");
        try {
            cleanup();
        } catch (InstallException e) {
            throw new InstallException(failure + "; the rollback failed too: " + e.getMessage());
        }
    }

    /** Checks that every chain the rules create now exists; rolls back and fails otherwise. */
    private void verify() throws InstallException {
        for (IpFamily f : families()) {
            IptablesState state = save(f);
            for (Map.Entry<Table, List<String>> e : rules.createdChains(f).entrySet()) {
                for (String chain : e.getValue()) {
                    if (!state.hasChain(e.getKey(), chain)) {
                        String failure = "verification failed: chain " + chain + " is missing from the "
                                + e.getKey() + " table (" + label(f) + ") after iptables-restore";
                        rollback(failure);
                        throw new InstallException(failure);
                    }
                }
            }
        }
    }

    /** True when the rules of this configuration are installed, and no other ISTIO_ rules. */
    public boolean isInstalled() throws InstallException {
        for (IpFamily f : families()) {
            if (!matches(f, save(f))) {
                return false;
            }
        }
        return true;
    }

    /**
     * Compares the kernel's state with the generated rules: the same ISTIO_ chains, the same number of rules in each
     * and of jumps into them, and every generated rule found by {@code iptables -C}.
     */
    private boolean matches(IpFamily f, IptablesState state) {
        Map<Table, List<String>> created = rules.createdChains(f);
        for (Table t : Table.values()) {
            List<String> want = created.getOrDefault(t, List.of());
            List<String> have = state.istioChains(t);
            if (want.size() != have.size() || !have.containsAll(want)) {
                return false;
            }
            for (String chain : want) {
                long count = rules.rules(f).stream().filter(r -> r.table() == t && r.chain().equals(chain)).count();
                if (state.rules(t, chain).size() != count) {
                    return false;
                }
            }
            long jumps = rules.rules(f).stream()
                    .filter(r -> r.table() == t && r.inBuiltInChain() && r.jumpTarget() != null)
                    .count();
            if (state.jumpsIntoIstioChains(t).size() != jumps) {
                return false;
            }
        }
        for (Rule r : rules.rules(f)) {
            List<String> check = new ArrayList<>(List.of(iptables(f)));
            check.addAll(r.commandArgs("-C"));
            if (!runner.run(check).ok()) {
                return false;
            }
        }
        return true;
    }

    /**
     * Removes what an install of this configuration creates. Missing rules and chains are not an error; only a
     * failure to read the current state is.
     */
    public void cleanup() throws InstallException {
        cleanupRules();
        removeGuardrails();
    }

    /** Removes the rules, chains and routes an install of this configuration creates; not the guardrails. */
    private void cleanupRules() throws InstallException {
        // The rules of both interception modes with both families for the same flags: an install in TPROXY mode
        // leaves marks in the built-in mangle chains and a policy route that a REDIRECT configuration does not
        // create, and one with IPv6 leaves ip6tables rules that a configuration without it does not create.
        List<RuleSet> sets = new ArrayList<>(List.of(rules));
        for (InterceptionMode mode : InterceptionMode.values()) {
            sets.add(RuleGenerator.generate(config.with(mode, true)));
        }
        List<IpFamily> cleaned = new ArrayList<>(families());
        cleaned.addAll(leftoverFamilies());
        for (IpFamily f : cleaned) {
            cleanup(f, sets);
        }
        String mark = Long.toString(config.inboundTproxyMark());
        String table = Long.toString(config.inboundTproxyRouteTable());
        for (IpFamily f : cleaned) {
            deleteRepeatedly(List.of("ip", "-f", f.ipFamilyName(), "rule", "del", "fwmark", mark,
                    "lookup", table));
            runner.run(List.of("ip", "-f", f.ipFamilyName(), "route", "del", "local", "default", "dev", "lo",
                    "table", table));
        }
        if (cleaned.contains(IpFamily.V6)) {
            runner.run(List.of("ip", "-6", "addr", "del", PASSTHROUGH_V6, "dev", "lo"));
        }
    }

    /**
     * The families this configuration leaves alone (IPv6 when it is off) whose tables hold ISTIO_ chains, left by an
     * earlier install with other flags; a family whose rules cannot be read holds none.
     */
    private List<IpFamily> leftoverFamilies() {
        List<IpFamily> found = new ArrayList<>();
        for (IpFamily f : IpFamily.values()) {
            if (!families().contains(f)) {
                CommandRunner.Result result = runner.run(List.of(binaries.get(f).save()));
                if (result.ok() && IptablesState.parse(result.stdout()).hasIstioChains()) {
                    found.add(f);
                }
            }
        }
        return found;
    }

    private void cleanup(IpFamily f, List<RuleSet> sets) throws InstallException {
        for (RuleSet set : sets) {
            List<Rule> generated = set.rules(f);
            for (int i = generated.size() - 1; i >= 0; i--) {
                Rule r = generated.get(i);
                if (r.inBuiltInChain()) {
                    List<String> delete = new ArrayList<>(List.of(iptables(f)));
                    delete.addAll(r.commandArgs("-D"));
                    deleteRepeatedly(delete);
                }
            }
        }
        IptablesState state = save(f);
        for (Table t : Table.values()) {
            for (IptablesState.SavedRule jump : state.jumpsIntoIstioChains(t)) {
                List<String> delete = new ArrayList<>(List.of(iptables(f), "-t", t.iptablesName(), "-D",
                        jump.chain()));
                delete.addAll(jump.spec());
                deleteRepeatedly(delete);
            }
        }
        for (Table t : Table.values()) {
            for (String chain : state.istioChains(t)) {
                runner.run(List.of(iptables(f), "-t", t.iptablesName(), "-F", chain));
            }
        }
        for (Table t : Table.values()) {
            for (String chain : state.istioChains(t)) {
                runner.run(List.of(iptables(f), "-t", t.iptablesName(), "-X", chain));
            }
        }
    }

    private void deleteRepeatedly(List<String> command) {
        for (int i = 0; i < MAX_DUPLICATES && runner.run(command).ok(); i++) {
            // each round removes one copy
        }
    }

    private IptablesState save(IpFamily f) throws InstallException {
        return IptablesState.parse(saveOutput(f));
    }

    /** What iptables-save prints for the family. */
    private String saveOutput(IpFamily f) throws InstallException {
        String save = binaries.get(f).save();
        CommandRunner.Result result = runner.run(List.of(save));
        if (!result.ok()) {
            throw new InstallException("cannot read the current rules: `" + save + "` exited "
                    + result.exitCode() + ": " + result.firstErrorLine() + " (iptables needs root, or CAP_NET_ADMIN)");
        }
        return result.stdout();
    }

    private String iptables(IpFamily f) {
        return binaries.get(f).iptables();
    }

    private static String label(IpFamily f) {
        return f == IpFamily.V4 ? "IPv4" : "IPv6";
    }
}
