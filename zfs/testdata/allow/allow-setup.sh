# Sets up the pool drallow whose `zfs allow` outputs are in testdata:
#   sh allow-setup.sh receive:append   (OpenZFS 2.3.2 and later)
#   sh allow-setup.sh receive          (OpenZFS 2.1, which has no receive:append)
set -e
RECEIVE=$1
id -u zrep-test >/dev/null 2>&1 || useradd --system --shell /bin/sh --password '*' zrep-test
getent group zrepdr >/dev/null || groupadd zrepdr
truncate -s 128M /var/tmp/drallow.img
zpool create -O mountpoint=none drallow /var/tmp/drallow.img
zfs create -p drallow/a/b/c
zfs create "drallow/a/with space"
zfs create drallow/long-name-that-makes-the-header-longer-than-seventy-chars-x
zfs allow -s @snapper snapshot,hold,send drallow
zfs allow -s @recv create,mount,receive drallow
zfs allow -s @outer @snapper,bookmark drallow
zfs allow -u zrep-test @snapper drallow
zfs allow -d -g zrepdr mount,bookmark drallow
zfs allow -l -u zrep-test userprop drallow
zfs allow -e destroy drallow/a
zfs allow -c rollback drallow/a
zfs allow -s @a1 release drallow/a
zfs allow -l -u zrep-test @recv,send drallow/a/b
zfs allow -u 54321 hold drallow/a/b
zfs allow -g 54322 hold drallow/a/b
zfs allow -u zrep-test compression,quota "drallow/a/with space"
zfs allow -e @outer drallow/a/b/c
zfs allow -c @recv,destroy drallow/a/b/c
zfs allow -l -u zrep-test send drallow/a/b/c
zfs allow -d -u zrep-test hold drallow/a/b/c
zfs allow -s "@with space" send drallow/a/b/c
zfs allow -u zrep-test,root "@with space" drallow/a/b/c
zfs allow -u zrep-test "$RECEIVE",create,mount drallow/a/b/c
zfs allow -u zrep-test send drallow/long-name-that-makes-the-header-longer-than-seventy-chars-x
