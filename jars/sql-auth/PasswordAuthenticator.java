package dev.setlist.sql;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import javax.security.sasl.AuthenticationException;
import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * HiveServer2 CUSTOM authentication for `setlist sql-server`: one user and password, read from the
 * server's environment (SETLIST_SQL_USER, default "setlist", and SETLIST_SQL_PASSWORD). Without a
 * password every login is refused.
 */
public final class PasswordAuthenticator implements PasswdAuthenticationProvider {
  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    String expectedUser = System.getenv().getOrDefault("SETLIST_SQL_USER", "setlist");
    String expectedPassword = System.getenv("SETLIST_SQL_PASSWORD");
    if (expectedPassword == null || expectedPassword.isEmpty()) {
      throw new AuthenticationException("SETLIST_SQL_PASSWORD is not set: every login is refused");
    }
    // Compare both in constant time, and always both, so a wrong user and a wrong password look alike.
    boolean userOk = MessageDigest.isEqual(bytes(user), bytes(expectedUser));
    boolean passwordOk = MessageDigest.isEqual(bytes(password), bytes(expectedPassword));
    if (!(userOk & passwordOk)) {
      throw new AuthenticationException("invalid user or password");
    }
  }

  private static byte[] bytes(String value) {
    return (value == null ? "" : value).getBytes(StandardCharsets.UTF_8);
  }
}
