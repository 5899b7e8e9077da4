# Connects to HOST PORT, sends MESSAGE, ends its side (half-close) and prints what comes back until the server closes.
# Exit 0 with the answer, 3 when the connection was closed or reset without an answer. Usage: tcpclient.py HOST PORT MSG
import socket, sys

s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
try:
    s.sendall(sys.argv[3].encode())
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except (ConnectionResetError, BrokenPipeError):
    data = b""
sys.stdout.write(data.decode())
sys.exit(0 if data else 3)
