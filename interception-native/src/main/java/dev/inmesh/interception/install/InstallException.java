package dev.inmesh.interception.install;

/** An install or clean-up step failed; the message says which step and why, and whether it was rolled back. */
public final class InstallException extends Exception {
    public InstallException(String message) {
        super(message);
    }
}
