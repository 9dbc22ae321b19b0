"""Container names: the one rule of what a name may be (`valid_name`, `validate_name`, as `run
--name`, `rename` and the TUI's dialogs check it) and Docker-style generated names, `adjective_surname`
(e.g. `focused_turing`).

Lists are a subset of Docker's `namesgenerator`; a numeric suffix is appended on retry, as Docker does.
"""

from __future__ import annotations

import re

from engine.errors import InvalidArgument
from engine.util.randomness import pick

NAME_RE = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")  # Docker's: two characters at least


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


def validate_name(name: str) -> str:
    """The name without its optional leading "/"; InvalidArgument in Docker's words otherwise."""
    if not NAME_RE.match(name):
        raise InvalidArgument(f'Invalid container name ("{name}"), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
    return name.lstrip("/")

ADJECTIVES = (
    "admiring adoring affectionate agitated amazing angry awesome beautiful blissful bold boring brave "
    "busy charming clever compassionate competent condescending confident cool cranky crazy dazzling "
    "determined distracted dreamy eager ecstatic elastic elated elegant eloquent epic exciting fervent "
    "festive flamboyant focused friendly frosty funny gallant gifted goofy gracious great happy hardcore "
    "heuristic hopeful hungry infallible inspiring intelligent interesting jolly jovial keen kind laughing "
    "loving lucid magical modest musing mystifying naughty nervous nice nifty nostalgic objective optimistic "
    "peaceful pedantic pensive practical priceless quirky quizzical recursing relaxed reverent romantic sad "
    "serene sharp silly sleepy stoic strange stupefied suspicious sweet tender thirsty trusting unruffled "
    "upbeat vibrant vigilant vigorous wizardly wonderful xenodochial youthful zealous zen"
).split()

SURNAMES = (
    "agnesi albattani allen almeida archimedes ardinghelli aryabhata austin babbage banach bardeen bartik "
    "bassi beaver bell benz bhabha bhaskara black blackburn blackwell bohr booth borg bose bouman boyd "
    "brahmagupta brattain brown buck burnell cannon carson cartwright carver cerf chandrasekhar chaplygin "
    "chatelet chatterjee chaum chebyshev clarke cohen colden cori cray curie darwin davinci dewdney dhawan "
    "diffie dijkstra dirac driscoll dubinsky easley edison einstein elbakyan elgamal elion ellis engelbart "
    "euclid euler faraday feistel fermat fermi feynman franklin gagarin galileo galois ganguly gates gauss "
    "germain goldberg goldstine goldwasser golick goodall gould greider grothendieck haibt hamilton haslett "
    "hawking heisenberg hellman hermann herschel hertz heyrovsky hodgkin hofstadter hoover hopper hugle "
    "hypatia jackson jang jemison jennings jepsen johnson joliot jones kalam kapitsa kare keldysh keller "
    "kepler khayyam khorana kilby kirch knuth kowalevski lalande lamarr lamport leakey leavitt lederberg "
    "lehmann lewin lichterman liskov lovelace lumiere mahavira margulis matsumoto maxwell mayer mccarthy "
    "mcclintock mclaren mclean mcnulty meitner mendel mendeleev meninsky merkle mestorf mirzakhani montalcini "
    "moore morse moser murdock napier nash neumann newton nightingale nobel noether northcutt noyce panini "
    "pare pascal pasteur payne perlman pike poincare poitras proskuriakova ptolemy raman ramanujan rhodes "
    "ride ritchie robinson roentgen rosalind rubin saha sammet sanderson satoshi shamir shannon shaw shirley "
    "shockley shtern sinoussi snyder solomon spence stonebraker sutherland swanson swartz swirles taussig "
    "tesla tharp thompson torvalds tu turing varahamihira vaughan villani visvesvaraya volhard wescoff "
    "wilbur wiles williams williamson wilson wing wozniak wright wu yalow yonath zhukovsky"
).split()


def generate_name(retry: int = 0) -> str:
    """A random `adjective_surname`; from the first retry on, Docker appends a digit."""
    name = f"{pick(ADJECTIVES)}_{pick(SURNAMES)}"
    if name == "boring_wozniak":  # Steve Wozniak is not boring (Docker's own rule)
        return generate_name(retry)
    if retry > 0:
        name += pick("0123456789")
    return name
