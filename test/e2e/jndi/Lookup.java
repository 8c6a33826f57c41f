// Asks a DNS server through Java's JNDI DNS provider, as Spring and other Java apps do. Each argument is
// "name TYPE[,TYPE...]"; prints one line per attribute value: "name TYPE value", or "name error <message>".
import java.util.Hashtable;
import javax.naming.NamingEnumeration;
import javax.naming.directory.Attribute;
import javax.naming.directory.Attributes;
import javax.naming.directory.DirContext;
import javax.naming.directory.InitialDirContext;

public class Lookup {
  public static void main(String[] args) throws Exception {
    Hashtable<String, String> env = new Hashtable<>();
    env.put("java.naming.factory.initial", "com.sun.jndi.dns.DnsContextFactory");
    env.put("java.naming.provider.url", "dns://" + args[0]);
    DirContext ctx = new InitialDirContext(env);
    for (int i = 1; i < args.length; i++) {
      String[] parts = args[i].split(" ");
      String name = parts[0];
      try {
        Attributes attrs = ctx.getAttributes(name, parts[1].split(","));
        if (attrs.size() == 0) System.out.println(name + " none");
        NamingEnumeration<? extends Attribute> all = attrs.getAll();
        while (all.hasMore()) {
          Attribute a = all.next();
          NamingEnumeration<?> values = a.getAll();
          while (values.hasMore()) System.out.println(name + " " + a.getID() + " " + values.next());
        }
      } catch (Exception e) {
        System.out.println(name + " error " + e);
      }
    }
  }
}
