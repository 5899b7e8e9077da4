/** Listeners (LDS): filter chains and their matches, the HTTP connection manager and the TCP proxy. */
package dev.inmesh.api.config.listener;
