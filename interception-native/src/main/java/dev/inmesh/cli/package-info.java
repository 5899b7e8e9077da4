/** The {@code inmesh} command line: picocli subcommands for the tools of every module. */
package dev.inmesh.cli;
