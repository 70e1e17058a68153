"""Chinese and cross-lingual retrieval per text embedder: recall@5 for zh→zh, zh→en, en→zh.

    .venv/bin/python benchmarks/multilingual_retrieval.py [--embedders a,b] [--qa ../shared/eval/answers/us-public-records]
                                                          [--scifact ../shared/eval/text/scifact --cache /tmp/mmkb-emb]

Two sets, both run through `kb eval retrieval`'s own code (app.evaluation.run_retrieval_eval),
so every number is what the app's retrieval does with that embedder:

- **pairs**: the 36 Chinese/English passage pairs below, written for this benchmark from
  public encyclopedic facts (the Wikipedia articles on each subject, both languages; each
  pair says the same thing in both). Each passage has a Chinese and an English question.
  zh→zh: Chinese questions over the 36 Chinese passages; zh→en: Chinese questions over the
  36 English passages; en→zh: English questions over the Chinese passages. Related subjects
  (rivers, mountains, inventions, cities) make the passages each other's distractors.
- **qa**: the public us-public-records set (../shared/eval/answers/us-public-records): the 25
  pages of its 6 PDFs are the corpus; zh→zh: its 6 Chinese questions (zh01-zh06, gold: the
  Chinese page); zh→en: its 2 cross-lingual questions (xl01, xl02, gold: an English page);
  en→zh: English translations of zh01-zh06 written here (gold: the Chinese page).

Rows per embedder: `dense only` (the embedder alone) and `default` (the shipped pipeline:
dense + BM25 fusion + lexical rerank). `BM25 only` does not depend on the embedder and is
printed once. With --scifact, nDCG@10 and the corpus' indexing time on BEIR SciFact too
(`--cache` keeps each embedder's corpus vectors for the next run).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app import registry  # noqa: E402,F401 - hub libraries offline first
from app.evaluation import run_retrieval_eval, select_configs  # noqa: E402
from app.model_set import ModelSet  # noqa: E402
from app.settings import Settings  # noqa: E402

EMBEDDERS = ("all-MiniLM-L6-v2", "multilingual-e5-small-q4", "use-multilingual-v3")

# (subject, Chinese passage, English passage, Chinese question, English question)
PAIRS = [
    (
        "yangtze",
        "长江全长约6300公里，是中国最长、世界第三长的河流。它发源于青藏高原的唐古拉山脉，流经11个省级行政区，在上海注入东海。",
        "The Yangtze is about 6,300 km long, the longest river in China and the third longest in the world. It rises in the Tanggula Mountains on the Tibetan Plateau, flows through eleven provincial-level divisions and enters the East China Sea at Shanghai.",
        "中国最长的河流在哪里入海？",
        "Where does China's longest river reach the sea?",
    ),
    (
        "yellow-river",
        "黄河全长约5464公里，是中国第二长河。它发源于青海的巴颜喀拉山脉，因携带大量黄土高原的泥沙而呈黄色，在山东注入渤海，被称为中华民族的母亲河。",
        "The Yellow River, about 5,464 km long, is China's second-longest river. It rises in the Bayan Har Mountains in Qinghai, takes its colour from the silt it carries off the Loess Plateau, and flows into the Bohai Sea in Shandong. It is called the mother river of the Chinese nation.",
        "黄河的水为什么是黄色的？",
        "Why is the water of the Yellow River yellow?",
    ),
    (
        "pearl-river",
        "珠江是中国南方最大的河流，由西江、北江和东江汇合而成，流经广东等省区，经八个入海口注入南海。珠江三角洲是中国经济最发达的地区之一。",
        "The Pearl River is the largest river system in southern China, formed by the West, North and East Rivers. It flows through Guangdong and neighbouring provinces and enters the South China Sea through eight outlets; its delta is one of the most economically developed regions of China.",
        "哪三条河流汇合成珠江？",
        "Which three rivers join to form the Pearl River?",
    ),
    (
        "everest",
        "珠穆朗玛峰位于中国与尼泊尔边境的喜马拉雅山脉，是世界最高峰。2020年中尼两国共同宣布其最新高程为8848.86米。1953年埃德蒙·希拉里和丹增·诺尔盖首次登顶。",
        "Mount Everest, on the border between China and Nepal in the Himalayas, is the highest mountain in the world. In 2020 China and Nepal jointly announced its new height of 8,848.86 metres. Edmund Hillary and Tenzing Norgay first reached the summit in 1953.",
        "世界最高峰的最新高程是多少米？",
        "What is the latest official height of the world's highest mountain?",
    ),
    (
        "mount-tai",
        "泰山位于山东省泰安市，主峰玉皇顶海拔1545米，为五岳之首。历代帝王曾在此举行封禅大典，1987年被列入世界文化与自然双重遗产。",
        "Mount Tai, in Tai'an, Shandong Province, rises to 1,545 metres at its main peak, the Jade Emperor Peak, and is the foremost of the Five Great Mountains. Emperors held the Fengshan sacrifices there, and in 1987 it was listed as a mixed World Cultural and Natural Heritage site.",
        "五岳之首的主峰海拔多高？",
        "How high is the main peak of the foremost of the Five Great Mountains?",
    ),
    (
        "huangshan",
        "黄山位于安徽省南部，以奇松、怪石、云海、温泉“四绝”著称，最高峰莲花峰海拔1864米。1990年被列入世界文化与自然遗产名录。",
        'Mount Huangshan, in southern Anhui Province, is famous for its "four wonders": oddly shaped pines, strange rocks, seas of clouds and hot springs. Its highest peak, Lotus Peak, is 1,864 metres high. It was inscribed on the World Heritage List in 1990.',
        "黄山的“四绝”是什么？",
        'What are the "four wonders" of Huangshan?',
    ),
    (
        "great-wall",
        "长城是古代中国为抵御北方游牧民族而修筑的军事防御工程。现存的长城大多为明代所建，2012年国家文物局公布的长城总长度为21196.18公里。1987年被列入世界遗产。",
        "The Great Wall is a military defence system that ancient China built against the nomadic peoples of the north. Most of the surviving wall dates from the Ming dynasty; in 2012 the National Cultural Heritage Administration put its total length at 21,196.18 km. It became a World Heritage Site in 1987.",
        "长城的总长度是多少公里？",
        "How long is the Great Wall in total?",
    ),
    (
        "forbidden-city",
        "北京故宫是明清两代的皇家宫殿，旧称紫禁城，始建于明永乐四年（1406年），1420年建成，占地约72万平方米，是世界上现存规模最大的木结构古建筑群之一，现为故宫博物院。",
        "The Palace Museum in Beijing, formerly the Forbidden City, was the imperial palace of the Ming and Qing dynasties. Construction began in 1406 and was completed in 1420; it covers about 720,000 square metres and is one of the largest surviving complexes of ancient wooden buildings in the world.",
        "紫禁城是哪一年建成的？",
        "In which year was the Forbidden City completed?",
    ),
    (
        "three-gorges",
        "三峡大坝位于湖北省宜昌市的长江西陵峡段，是世界上装机容量最大的水电站，总装机容量2250万千瓦。大坝于1994年正式动工，2006年坝体全线建成。",
        "The Three Gorges Dam, on the Xiling Gorge of the Yangtze at Yichang in Hubei Province, is the hydropower station with the largest installed capacity in the world: 22,500 megawatts. Construction officially began in 1994, and the dam body was completed in 2006.",
        "三峡水电站的总装机容量是多少？",
        "What is the installed capacity of the Three Gorges hydropower station?",
    ),
    (
        "hzmb",
        "港珠澳大桥连接香港、珠海和澳门，全长约55公里，包括一段6.7公里的海底隧道，于2018年10月正式开通，是世界上最长的跨海桥隧系统之一。",
        "The Hong Kong–Zhuhai–Macao Bridge links Hong Kong, Zhuhai and Macao. It is about 55 km long, including a 6.7 km undersea tunnel, and opened in October 2018; it is one of the longest sea-crossing bridge and tunnel systems in the world.",
        "港珠澳大桥的海底隧道有多长？",
        "How long is the undersea tunnel of the bridge linking Hong Kong, Zhuhai and Macao?",
    ),
    (
        "paper",
        "东汉时期的蔡伦于公元105年改进了造纸术，用树皮、麻头、破布和旧渔网造纸，降低了纸的成本。造纸术是中国古代四大发明之一。",
        "In AD 105, during the Eastern Han dynasty, Cai Lun improved papermaking, making paper from tree bark, hemp ends, rags and old fishing nets, which lowered its cost. Papermaking is one of the Four Great Inventions of ancient China.",
        "蔡伦用什么材料造纸？",
        "What materials did Cai Lun use to make paper?",
    ),
    (
        "movable-type",
        "北宋毕昇在11世纪40年代发明了胶泥活字印刷术，事见沈括的《梦溪笔谈》。活字可以重复使用，比雕版印刷更加灵活。",
        "Bi Sheng of the Northern Song dynasty invented movable type made of baked clay in the 1040s, as recorded in Shen Kuo's Dream Pool Essays. The type could be reused, which made printing more flexible than carving whole wooden blocks.",
        "谁发明了活字印刷术？",
        "Who invented movable type printing?",
    ),
    (
        "compass",
        "指南针利用磁石指示南北方向。战国时期已有称为“司南”的磁性指向器，北宋时指南针开始用于航海，沈括最早记录了磁偏角现象。",
        "The compass uses a magnet to show north and south. A magnetic pointing device called the sinan existed by the Warring States period; in the Northern Song dynasty the compass began to be used for navigation at sea, and Shen Kuo was the first to record magnetic declination.",
        "指南针什么时候开始用于航海？",
        "When did the compass begin to be used for navigation at sea?",
    ),
    (
        "gunpowder",
        "火药由硝石、硫磺和木炭混合制成，最早出现于唐代炼丹家的实验中。宋代火药已广泛用于军事，制成火箭、火炮等武器。",
        "Gunpowder, a mixture of saltpetre, sulphur and charcoal, first appeared in the experiments of Tang dynasty alchemists. By the Song dynasty it was widely used in war, in weapons such as fire arrows and cannons.",
        "火药由哪三种成分混合而成？",
        "What three ingredients is gunpowder made of?",
    ),
    (
        "qin",
        "秦始皇嬴政于公元前221年灭六国，建立了中国历史上第一个统一的中央集权王朝秦朝，统一了文字、货币和度量衡，并推行郡县制。",
        "Qin Shi Huang (Ying Zheng) conquered the other six states in 221 BC and founded the Qin, the first unified centralised dynasty in Chinese history. He standardised the script, the currency and weights and measures, and introduced the system of commanderies and counties.",
        "秦始皇统一六国后统一了哪些东西？",
        "What did the first emperor standardise after unifying China?",
    ),
    (
        "silk-road",
        "丝绸之路是古代连接中国与中亚、西亚和欧洲的贸易路线。西汉时张骞两次出使西域，开辟了这条通道，丝绸、茶叶和瓷器由此西传。",
        "The Silk Road was the ancient network of trade routes linking China with Central Asia, West Asia and Europe. Zhang Qian opened it with his two missions to the Western Regions under the Western Han dynasty, and silk, tea and porcelain travelled west along it.",
        "哪位使者开辟了丝绸之路？",
        "Which envoy opened the Silk Road?",
    ),
    (
        "zheng-he",
        "1405年至1433年，明朝航海家郑和率领船队七次下西洋，到达东南亚和印度洋沿岸，最远到达东非和红海沿岸。",
        "Between 1405 and 1433 the Ming navigator Zheng He led seven voyages to the Western Oceans, reaching Southeast Asia and the shores of the Indian Ocean, and as far as East Africa and the Red Sea.",
        "郑和一共下了几次西洋？",
        "How many voyages did Zheng He lead?",
    ),
    (
        "beijing",
        "北京是中华人民共和国的首都，也是全国的政治和文化中心。北京拥有故宫、天坛、颐和园等多处世界遗产，2008年举办了夏季奥运会，2022年举办了冬季奥运会。",
        "Beijing is the capital of the People's Republic of China and the country's political and cultural centre. It has several World Heritage sites, including the Forbidden City, the Temple of Heaven and the Summer Palace, and hosted the Summer Olympics in 2008 and the Winter Olympics in 2022.",
        "哪座城市既举办过夏季奥运会又举办过冬季奥运会？",
        "Which city has hosted both the Summer and the Winter Olympics?",
    ),
    (
        "shanghai",
        "上海位于长江入海口，是中国最大的经济中心城市之一。上海港的集装箱吞吐量自2010年起多年位居世界第一。外滩和陆家嘴是其著名地标。",
        "Shanghai lies at the mouth of the Yangtze and is one of China's largest economic centres. Since 2010 the Port of Shanghai has for many years handled the most containers of any port in the world. The Bund and Lujiazui are its best-known landmarks.",
        "集装箱吞吐量世界第一的港口是哪个？",
        "Which port has handled the most containers in the world?",
    ),
    (
        "xian",
        "西安古称长安，位于陕西省关中平原，是十三朝古都，也是丝绸之路的起点。秦始皇陵兵马俑于1974年在西安临潼被发现。",
        "Xi'an, called Chang'an in ancient times, lies on the Guanzhong Plain in Shaanxi Province. It was the capital of thirteen dynasties and the starting point of the Silk Road. The Terracotta Army of Qin Shi Huang's mausoleum was discovered at Lintong, Xi'an, in 1974.",
        "兵马俑是哪一年被发现的？",
        "When was the Terracotta Army discovered?",
    ),
    (
        "west-lake",
        "杭州西湖位于浙江省杭州市西部，三面环山，以苏堤、白堤和“西湖十景”闻名，2011年被列入世界文化遗产名录。",
        'West Lake lies in the west of Hangzhou, Zhejiang Province, surrounded by hills on three sides. It is famous for the Su Causeway, the Bai Causeway and its "Ten Scenes", and was inscribed as a World Cultural Heritage site in 2011.',
        "西湖哪一年被列入世界文化遗产？",
        "When was West Lake inscribed as a World Heritage site?",
    ),
    (
        "panda",
        "大熊猫是中国特有的熊科动物，主要分布在四川、陕西和甘肃的山区，以竹子为主要食物。2016年世界自然保护联盟将其受威胁等级从“濒危”降为“易危”。",
        'The giant panda is a bear found only in China, mainly in the mountains of Sichuan, Shaanxi and Gansu, and feeds mostly on bamboo. In 2016 the IUCN downgraded its status from "endangered" to "vulnerable".',
        "大熊猫的主要食物是什么？",
        "What does the giant panda mainly eat?",
    ),
    (
        "photosynthesis",
        "光合作用是绿色植物利用光能，把二氧化碳和水转化为储存能量的有机物（如葡萄糖）并释放氧气的过程，主要在叶绿体中进行。",
        "Photosynthesis is the process by which green plants use light energy to turn carbon dioxide and water into energy-storing organic matter such as glucose, releasing oxygen. It takes place mainly in the chloroplasts.",
        "光合作用主要在植物细胞的什么结构中进行？",
        "In which part of the plant cell does photosynthesis mainly take place?",
    ),
    (
        "dna",
        "脱氧核糖核酸（DNA）是储存遗传信息的分子，由两条互相盘绕的链组成双螺旋结构。1953年沃森和克里克提出了DNA双螺旋模型。",
        "Deoxyribonucleic acid (DNA) is the molecule that stores genetic information; two strands wind around each other in a double helix. Watson and Crick proposed the double-helix model in 1953.",
        "谁提出了DNA双螺旋结构模型？",
        "Who proposed the double-helix model of DNA?",
    ),
    (
        "light",
        "光在真空中的传播速度约为每秒299792公里，是宇宙中信息传播速度的上限。光从太阳到达地球大约需要8分20秒。",
        "Light travels through a vacuum at about 299,792 km per second, the upper limit for the speed at which information can travel. Light takes about 8 minutes 20 seconds to reach the Earth from the Sun.",
        "阳光到达地球需要多长时间？",
        "How long does sunlight take to reach the Earth?",
    ),
    (
        "boiling-point",
        "在标准大气压下，纯水的沸点是100摄氏度，冰点是0摄氏度。海拔越高，气压越低，水的沸点也越低，因此在高原上煮饭需要用高压锅。",
        "At standard atmospheric pressure pure water boils at 100 °C and freezes at 0 °C. The higher the altitude, the lower the air pressure and the lower the boiling point, which is why pressure cookers are used for cooking on high plateaus.",
        "为什么在高原上煮饭要用高压锅？",
        "Why do people on high plateaus cook with pressure cookers?",
    ),
    (
        "moon",
        "月球是地球唯一的天然卫星，与地球的平均距离约为38.4万公里。2019年1月，中国嫦娥四号探测器实现了人类首次在月球背面软着陆。",
        "The Moon is the Earth's only natural satellite, on average about 384,000 km away. In January 2019 China's Chang'e 4 probe made the first soft landing on the far side of the Moon.",
        "哪个探测器首次在月球背面软着陆？",
        "Which probe made the first soft landing on the far side of the Moon?",
    ),
    (
        "qinghai-tibet-railway",
        "青藏铁路东起青海西宁，西至西藏拉萨，全长1956公里，2006年全线通车，是世界上海拔最高的高原铁路，最高点唐古拉山口海拔5072米。",
        "The Qinghai–Tibet Railway runs from Xining in Qinghai to Lhasa in Tibet, 1,956 km in all. It opened along its whole length in 2006 and is the highest railway in the world; its highest point, at the Tanggula Pass, is 5,072 metres above sea level.",
        "世界上海拔最高的铁路最高点有多高？",
        "How high is the highest point of the world's highest railway?",
    ),
    (
        "grand-canal",
        "京杭大运河北起北京，南至杭州，全长约1794公里，是世界上最长的人工运河。它始凿于春秋时期，隋朝时大规模开通，2014年被列入世界遗产名录。",
        "The Grand Canal runs from Beijing in the north to Hangzhou in the south, about 1,794 km, and is the longest artificial canal in the world. Its first sections were dug in the Spring and Autumn period, it was opened on a large scale under the Sui dynasty, and it became a World Heritage Site in 2014.",
        "世界上最长的人工运河连接哪两座城市？",
        "Which two cities does the world's longest artificial canal connect?",
    ),
    (
        "confucius",
        "孔子名丘，字仲尼，春秋时期鲁国人，是儒家学派的创始人。他的言行由弟子及再传弟子记录整理成《论语》。",
        "Confucius, named Qiu, with the courtesy name Zhongni, was a man of the state of Lu in the Spring and Autumn period and the founder of the Confucian school. His disciples and their students recorded his sayings and deeds in the Analects.",
        "记录孔子言行的书叫什么？",
        "Which book records the sayings of Confucius?",
    ),
    (
        "li-bai",
        "李白是唐代诗人，被誉为“诗仙”，其诗风豪放飘逸，代表作有《静夜思》《将进酒》《蜀道难》等。",
        'Li Bai was a poet of the Tang dynasty, known as the "Immortal of Poetry" for his bold and free style. His best-known works include "Quiet Night Thoughts", "Bring in the Wine" and "The Hard Road to Shu".',
        "被称为“诗仙”的是哪位诗人？",
        'Which poet is called the "Immortal of Poetry"?',
    ),
    (
        "spring-festival",
        "春节即农历新年，是中国最重要的传统节日，日期在公历1月下旬到2月中旬之间。人们贴春联、放鞭炮、吃年夜饭，春运期间大量人口返乡团聚。",
        "The Spring Festival, the lunar new year, is the most important traditional festival in China; it falls between late January and mid-February. People put up couplets, set off firecrackers and eat a New Year's Eve dinner, and during the travel rush huge numbers go home to their families.",
        "春节一般在公历几月？",
        "In which months of the Western calendar does the Spring Festival fall?",
    ),
    (
        "mid-autumn",
        "中秋节在农历八月十五，人们赏月、吃月饼，寓意家人团圆。2008年起中秋节成为中国的法定假日。",
        "The Mid-Autumn Festival falls on the fifteenth day of the eighth lunar month; people admire the full moon and eat mooncakes as a sign of family reunion. Since 2008 it has been a public holiday in China.",
        "中秋节吃什么传统食品？",
        "What traditional food is eaten at the Mid-Autumn Festival?",
    ),
    (
        "tea",
        "中国是茶的故乡，唐代陆羽著有世界上第一部茶学专著《茶经》。中国茶通常分为绿茶、红茶、乌龙茶、白茶、黄茶和黑茶六大类。",
        "China is the home of tea. Lu Yu of the Tang dynasty wrote the Classic of Tea, the world's first monograph on tea. Chinese tea is usually divided into six kinds: green, black (red), oolong, white, yellow and dark tea.",
        "世界上第一部茶学专著是谁写的？",
        "Who wrote the world's first book about tea?",
    ),
    (
        "high-speed-rail",
        "截至2023年底，中国高速铁路运营里程超过4.5万公里，居世界第一。京沪高铁于2011年开通，连接北京和上海，全长约1318公里。",
        "By the end of 2023 China had more than 45,000 km of high-speed railway in operation, the most in the world. The Beijing–Shanghai high-speed railway, about 1,318 km long, opened in 2011.",
        "京沪高铁全长多少公里？",
        "How long is the Beijing–Shanghai high-speed railway?",
    ),
    (
        "qinghai-lake",
        "青海湖位于青海省东北部，面积约4400平方公里，是中国最大的内陆咸水湖。每年有大量候鸟在湖中的鸟岛栖息繁殖。",
        "Qinghai Lake, in north-eastern Qinghai Province, covers about 4,400 square kilometres and is China's largest inland saltwater lake. Large numbers of migratory birds nest and breed on its Bird Island every year.",
        "中国最大的咸水湖面积有多大？",
        "How large is China's largest saltwater lake?",
    ),
]

# English versions of the QA set's Chinese questions zh01-zh06 (translated here), for en→zh.
QA_ENGLISH = {
    "zh01": "According to table 7.7 of the Anhui construction land use standard (2020 edition), what is the land-use index of a road-section monitoring and communication sub-centre, in hectares per site?",
    "zh02": "For the acceleration and deceleration lanes at service facility entrances and exits, what land use should generally not be exceeded in plain areas, in hectares per site?",
    "zh03": "For the acceleration and deceleration lanes at service facility entrances and exits, what land use should generally not be exceeded in hilly and mountainous areas?",
    "zh04": "According to table 7.5, what is the base land-use index of a parking area on an eight-lane expressway, in hectares per site?",
    "zh05": "On which roads are maintenance work areas generally set up?",
    "zh06": "What land-use index should a bridge and tunnel monitoring and communication station not exceed, in hectares per site?",
}


def _write_beir(out: Path, corpus: dict[str, str], queries: dict[str, str], qrels: dict[str, str]) -> Path:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for doc_id, text in corpus.items():
            handle.write(json.dumps({"_id": doc_id, "title": "", "text": text}, ensure_ascii=False) + "\n")
    with (out / "queries.jsonl").open("w", encoding="utf-8") as handle:
        for qid, text in queries.items():
            handle.write(json.dumps({"_id": qid, "text": text}, ensure_ascii=False) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        for qid, doc_id in qrels.items():
            handle.write(f"{qid}\t{doc_id}\t1\n")
    return out


def pair_sets(root: Path) -> dict[str, Path]:
    zh = {f"{s}.zh": p for s, p, _, _, _ in PAIRS}
    en = {f"{s}.en": p for s, _, p, _, _ in PAIRS}
    q_zh = {s: q for s, _, _, q, _ in PAIRS}
    q_en = {s: q for s, _, _, _, q in PAIRS}
    return {
        "pairs zh→zh": _write_beir(root / "pairs-zh-zh", zh, q_zh, {s: f"{s}.zh" for s in q_zh}),
        "pairs zh→en": _write_beir(root / "pairs-zh-en", en, q_zh, {s: f"{s}.en" for s in q_zh}),
        "pairs en→zh": _write_beir(root / "pairs-en-zh", zh, q_en, {s: f"{s}.zh" for s in q_en}),
    }


def qa_sets(root: Path, qa_dir: Path) -> dict[str, Path]:
    import pymupdf

    corpus: dict[str, str] = {}
    for pdf in sorted((qa_dir / "docs").glob("*.pdf")):
        with pymupdf.open(pdf) as document:
            for number, page in enumerate(document, start=1):
                corpus[f"{pdf.name}#p{number}"] = page.get_text()
    items = [json.loads(line) for line in (qa_dir / "qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    gold = {q["id"]: f"{q['file']}#p{q['pages'][0]}" for q in items if q.get("file")}
    zh = {q["id"]: q["question"] for q in items if q["id"].startswith("zh")}
    xl = {q["id"]: q["question"] for q in items if q["id"].startswith("xl")}
    return {
        "QA set zh→zh": _write_beir(root / "qa-zh-zh", corpus, zh, {q: gold[q] for q in zh}),
        "QA set zh→en": _write_beir(root / "qa-zh-en", corpus, xl, {q: gold[q] for q in xl}),
        "QA set en→zh": _write_beir(root / "qa-en-zh", corpus, QA_ENGLISH, {q: gold[q] for q in QA_ENGLISH}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--embedders", default=",".join(EMBEDDERS))
    parser.add_argument("--qa", type=Path, default=ROOT.parent / "shared" / "eval" / "answers" / "us-public-records")
    parser.add_argument("--scifact", type=Path, default=None, help="also nDCG@10 and index time on this BEIR folder")
    parser.add_argument("--cache", type=Path, default=None, help="keep corpus embeddings here (SciFact)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmkb-multilingual-") as tmp:
        sets = pair_sets(Path(tmp))
        if args.qa and (args.qa / "qa.jsonl").exists():
            sets.update(qa_sets(Path(tmp), args.qa))
        names = list(sets)
        rows: list[tuple[str, str, dict[str, float], str]] = []
        bm25: dict[str, float] = {}
        for embedder in [e.strip() for e in args.embedders.split(",") if e.strip()]:
            settings = Settings(data_dir=Path(tmp) / "data", database_url=None, text_embedder=embedder)
            models = ModelSet(settings)
            recall: dict[str, dict[str, float]] = {"dense only": {}, "default": {}}
            wanted = "dense only,default" + ("" if bm25 else ",BM25 only")
            for name in names:
                report = run_retrieval_eval(sets[name], models, configs=select_configs(settings, wanted), settings=settings)
                for result in report.results:
                    if result.name == "BM25 only":
                        bm25[name] = result.metrics["R@5"]
                    else:
                        recall[result.name][name] = result.metrics["R@5"]
            scifact = ""
            if args.scifact:
                report = run_retrieval_eval(
                    args.scifact,
                    models,
                    configs=select_configs(settings, "dense only,default"),
                    settings=settings,
                    cache_dir=args.cache,
                )
                by = {r.name: r.metrics["nDCG@10"] for r in report.results}
                scifact = f"{by['dense only']:.3f} / {by['default']:.3f} ({report.index_seconds:.0f} s)"
            for row, values in recall.items():
                rows.append((embedder, row, values, scifact if row == "default" else ""))
            print(f"done: {embedder}", file=sys.stderr, flush=True)
    header = (
        "| embedder | row | "
        + " | ".join(names)
        + (" | SciFact nDCG@10 dense / default (index time) |" if args.scifact else " |")
    )
    print(header)
    print("| --- " * (len(names) + 2 + bool(args.scifact)) + "|")
    print(
        "| – | BM25 only | " + " | ".join(f"{bm25.get(n, float('nan')):.2f}" for n in names) + (" | |" if args.scifact else " |")
    )
    for embedder, row, values, scifact in rows:
        cells = " | ".join(f"{values.get(n, float('nan')):.2f}" for n in names)
        print(f"| {embedder} | {row} | {cells}" + (f" | {scifact} |" if args.scifact else " |"))
    print(f"\nrecall@5 per direction; pairs: {len(PAIRS)} questions each; QA set: 6 / 2 / 6 questions over its 25 pages.")


if __name__ == "__main__":
    main()
